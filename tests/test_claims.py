"""Each claim rule and the verdict rule on constructed per-seed estimates whose answer is known."""

import copy
import json

import numpy as np
import pytest

from vaelab.claims.verdicts import (
    CONTRADICTED,
    MISSING,
    SPLIT,
    SUPPORTED,
    UNDECIDED,
    judge_claims,
    verdict,
)
from vaelab.evaluation.evidence import CONTRADICTS, DRAWS, INCONCLUSIVE, SUPPORTS

ZS = ("4", "16", "64")


def est(value, sd=0.01, seed=0):
    """An estimate of `value` whose resamples scatter by `sd` (0: a value with no noise)."""
    noise = np.random.default_rng(seed).normal(0, sd, DRAWS) if sd else np.zeros(DRAWS)
    return {"value": float(value), "boot": (value + noise).tolist()}


def seed_numbers(sign=+1, seed=0):
    """One seed's numbers: +1 shaped as the article says, -1 the other way round everywhere."""
    s = sign
    nll = {
        "ae": [150, 120, 110],
        "vae": [150 - 10 * s, 120 - 10 * s, 110 - 10 * s],
        "cvae (no label)": [150 - 11 * s, 120 - 11 * s, 110 - 11 * s],
        "cvae (true label)": [150 - 20 * s, 120 - 20 * s, 110 - 20 * s],
        "cvae (wrong label)": [160, 130, 120],
    }
    if s < 0:  # larger z reconstructs worse, the true label worst of all
        nll = {m: v[::-1] for m, v in nll.items()}
        nll["cvae (wrong label)"] = [100, 90, 80]
    n = seed * 10
    recon = {
        "nll": {
            m: {z: est(v, 0.3, n + i) for i, (z, v) in enumerate(zip(ZS, vs, strict=True))}
            for m, vs in nll.items()
        },
        "fours_as_nine": {
            m: {
                "4": est(0.3 if s > 0 else 0.0, 0.02, n + 1),
                "64": est(0.0 if s > 0 else 0.3, 0.02, n + 2),
            }
            for m in ("ae", "vae", "cvae (no label)", "cvae (true label)")
        },
        "pull": {
            "4to9": {
                z: {
                    "wrong label": est(0.3 if s > 0 else 0.0, 0.01, n + 3),
                    "no label": est(0.02 if s > 0 else 0.3, 0.01, n + 4),
                }
                for z in ZS
            }
        },
    }
    others = {
        "1to0": {
            "4": est(1.5 if s > 0 else 0.2, 0.1, n + 5),
            "64": est(0.2 if s > 0 else 1.5, 0.1, n + 6),
        }
    }
    offset = {
        "ae": est(3.0 if s > 0 else 0.1, 0.05, n + 7),
        "vae": est(0.1 if s > 0 else 3.0, 0.05, n + 8),
    }
    offset["cvae (no label)"] = est(0.1 if s > 0 else 3.0, 0.05, n + 9)
    knn = {"ae": est(0.7 if s > 0 else 0.4, 0.01, n + 10), "vae": est(0.5, 0.01, n + 11)}
    knn["cvae (no label)"] = est(0.45 if s > 0 else 0.6, 0.01, n + 12)
    v = {"ae": [0.6, 0.5, 0.5], "vae": [0.5, 0.6, 0.6], "cvae (no label)": [0.55, 0.7, 0.7]}
    if s < 0:
        v = {"ae": [0.4, 0.7, 0.7], "vae": [0.5, 0.6, 0.6], "cvae (no label)": [0.45, 0.5, 0.5]}
    vm = {
        z: {m: est(vals[i], 0.005, n + 13 + i) for m, vals in v.items()} for i, z in enumerate(ZS)
    }
    return {
        "reconstruction": {"latents": [4, 16, 64], "evidence": recon},
        "interpolation": {
            "evidence": {"others": others},
            "walks": {"1to0": {"4": {"path": [1, 8, 6, 0]}, "64": {"path": [1, 0]}}},
        },
        "latent": {"evidence": {"offset": offset, "knn": knn}},
        "clustering": {"evidence": {"v_measure": vm}},
    }


ARTICLE = [seed_numbers(+1, s) for s in range(3)]
FLIPPED = [seed_numbers(-1, s) for s in range(3)]


def verdicts(per_seed, seeds=None):
    return [c.verdict for c in judge_claims(per_seed, seeds)]


def test_article_shaped_numbers_in_every_seed_support_every_claim():
    claims = judge_claims(ARTICLE, seeds=[0, 1, 2])
    assert [c.verdict for c in claims] == [SUPPORTED] * 8
    assert {cmp.outcome for c in claims for cmp in c.comparisons} == {SUPPORTS}
    assert all(c.reason.startswith("All ") or c.reason.startswith("Its one") for c in claims)


def test_contradicting_numbers_in_every_seed_contradict_every_claim():
    claims = judge_claims(FLIPPED)
    assert [c.verdict for c in claims] == [CONTRADICTED] * 8
    assert {cmp.outcome for c in claims for cmp in c.comparisons} == {CONTRADICTS}


def test_seeds_that_disagree_make_a_claim_inconclusive_never_wrong():
    claims = judge_claims([ARTICLE[0], FLIPPED[1], ARTICLE[2]], seeds=[0, 1, 2])
    assert [c.verdict for c in claims] == [UNDECIDED] * 8
    walk = claims[3].comparisons[0]
    assert walk.outcome == INCONCLUSIVE and walk.low < 0 < walk.high
    assert [s["outcome"] for s in walk.per_seed] == [SUPPORTS, CONTRADICTS, SUPPORTS]
    assert walk.value == pytest.approx((1.3 - 1.3 + 1.3) / 3)


def test_one_part_contradicted_while_the_rest_support_is_parts_disagree_and_names_it():
    per_seed = copy.deepcopy(ARTICLE)
    for numbers in per_seed:  # the VAE clusters worse than the AE at z=16 in every seed
        numbers["clustering"]["evidence"]["v_measure"]["16"]["vae"] = est(0.3, 0.005)
    claim = judge_claims(per_seed)[6]
    outcomes = {c.name: c.outcome for c in claim.comparisons}
    assert outcomes.pop("z=16: vae scores higher than ae") == CONTRADICTS
    assert set(outcomes.values()) == {SUPPORTS}
    assert claim.verdict == SPLIT
    assert "z=16: vae scores higher than ae: VAE V-measure − AE's = −0.2" in claim.reason


def test_a_tie_is_inconclusive_and_the_reason_says_which_comparison():
    per_seed = copy.deepcopy(ARTICLE)
    for numbers in per_seed:  # no 4 is read as 9 by the AE at any z: both shares are 0
        zero = est(0.0, sd=0)
        numbers["reconstruction"]["evidence"]["fours_as_nine"]["ae"] = {"4": zero, "64": zero}
    claim = judge_claims(per_seed)[0]
    tie = next(
        c for c in claim.comparisons if c.name == "ae: more 4s read as 9 at z=4 than at z=64"
    )
    assert (tie.value, tie.low, tie.high, tie.outcome) == (0.0, 0.0, 0.0, INCONCLUSIVE)
    assert claim.verdict == UNDECIDED
    assert "ae: more 4s read as 9 at z=4 than at z=64" in claim.reason


def test_a_difference_smaller_than_the_noise_is_inconclusive():
    per_seed = copy.deepcopy(ARTICLE)
    for i, numbers in enumerate(per_seed):
        knn = numbers["latent"]["evidence"]["knn"]
        knn["ae"], knn["vae"] = est(0.501, 0.01, i), est(0.5, 0.01, 100 + i)
    outcomes = {c.name: c.outcome for c in judge_claims(per_seed)[5].comparisons}
    assert outcomes["ae separates digits better than vae"] == INCONCLUSIVE
    assert outcomes["ae separates digits better than cvae (no label)"] == SUPPORTS


def test_claim_1s_4_to_9_part_is_never_asked_of_a_decoder_told_the_true_label():
    names = [c.name for c in judge_claims(ARTICLE)[0].comparisons]
    nines = [n for n in names if "read as 9" in n]
    assert nines == [
        f"{m}: more 4s read as 9 at z=4 than at z=64" for m in ("ae", "vae", "cvae (no label)")
    ]
    assert sum("NLL falls" in n for n in names) == 4 * 2  # four modes, two steps up in z


def test_intervals_of_one_claim_hold_jointly_at_95_percent():
    claims = judge_claims(ARTICLE)
    for claim in claims:
        m = len(claim.comparisons)
        assert all(c.level == pytest.approx(1 - 0.05 / m) for c in claim.comparisons)


def test_one_seed_is_provisional_and_a_plain_dict_is_one_seed():
    one = judge_claims(ARTICLE[0])
    assert [c.to_dict() for c in one] == [c.to_dict() for c in judge_claims([ARTICLE[0]], [0])]
    assert all(c.provisional and c.to_dict()["provisional"] for c in one)
    assert [c.verdict for c in one] == [SUPPORTED] * 8


def test_a_seed_without_numbers_is_left_out_of_the_pool():
    claims = judge_claims([ARTICLE[0], None, {}], seeds=[0, 5, 7])
    assert [c.verdict for c in claims] == [SUPPORTED] * 8
    first = claims[1].comparisons[0]
    assert first.per_seed[1] is None and first.per_seed[2] is None
    assert claims[1].to_dict()["seeds"] == [0, 5, 7]


def test_nothing_measured_is_not_measured():
    assert verdicts({}) == [MISSING] * 8
    assert verdicts([]) == [MISSING] * 8
    assert verdicts([{"latent": {}}, {"clustering": {"evidence": {}}}]) == [MISSING] * 8
    assert "were not measured" in judge_claims({})[0].reason


def test_seeds_must_name_every_set_of_numbers():
    with pytest.raises(ValueError, match="2 seeds named for 3"):
        judge_claims(ARTICLE, seeds=[0, 1])


def test_to_dict_is_strict_json_with_effects_intervals_and_per_seed_evidence():
    claims = judge_claims([ARTICLE[0], FLIPPED[1]], seeds=[3, 4])
    data = json.loads(json.dumps([c.to_dict() for c in claims], allow_nan=False))
    walk = data[3]["comparisons"][0]
    assert walk["measure"] == "other digits passed, z=4 − z=64" and walk["unit"] == "digits"
    assert walk["expect"] == "positive" and len(walk["interval"]) == 2
    assert [s["outcome"] for s in walk["per_seed"]] == [SUPPORTS, CONTRADICTS]
    assert walk["article"].startswith("z=4: 1 → 8 → 6 → 0")
    assert walk["shown"][0] == {"z=4 (first pair)": "1 → 8 → 6 → 0", "z=64 (first pair)": "1 → 0"}
    assert walk["text"].startswith("other digits passed, z=4 − z=64 = ")
    assert data[0]["seeds"] == [3, 4] and data[0]["provisional"] is False
    assert data[0]["verdict"] == UNDECIDED and data[0]["reason"]


def test_claim_2_and_3_compare_in_the_direction_the_article_states():
    claims = judge_claims(ARTICLE)
    two = {c.name: c for c in claims[1].comparisons}
    vae = two["z=16: vae NLL below the AE's"]
    assert vae.measure == "VAE NLL − AE NLL" and vae.value == pytest.approx(-10)
    assert vae.sides == {"vae": pytest.approx(110), "ae": pytest.approx(120)}
    three = {c.name: c for c in claims[2].comparisons}
    assert three["z=4: NLL lower with the true label than with no label"].value == pytest.approx(-9)
    pull = three["z=64: test 4s given label 9 lean toward 9"]
    assert pull.value == pytest.approx(0.28) and pull.article.startswith("the 4 given label 9")


def test_claim_3_shows_the_style_experiment_without_judging_it():
    style = {"latents": [4], "by_latent": {"4": {"read_as_given": {"mean": 0.1}, "images": 9}}}
    claim = judge_claims(dict(ARTICLE[0], style=style))[2]
    assert claim.verdict == SUPPORTED and len(claim.context) == 1
    assert claim.context[0].numbers[0] == {"read as the label given (mean)": 0.1, "images": 9}


def test_clustering_between_4_and_16_is_not_what_the_article_spoke_of():
    between = copy.deepcopy(ARTICLE[0])
    vm = between["clustering"]["evidence"]["v_measure"]
    between["clustering"]["evidence"]["v_measure"] = {"8": vm["4"]}
    assert judge_claims(between)[6].verdict == MISSING
    assert judge_claims(between)[7].verdict == SUPPORTED  # claim 8 holds at every z


@pytest.mark.parametrize(
    ("outcomes", "expected"),
    [
        ([SUPPORTS, SUPPORTS], SUPPORTED),
        ([CONTRADICTS], CONTRADICTED),
        ([CONTRADICTS, INCONCLUSIVE], CONTRADICTED),
        ([SUPPORTS, CONTRADICTS], SPLIT),
        ([SUPPORTS, CONTRADICTS, INCONCLUSIVE], SPLIT),
        ([SUPPORTS, INCONCLUSIVE], UNDECIDED),
        ([INCONCLUSIVE], UNDECIDED),
        ([], MISSING),
    ],
)
def test_verdict(outcomes, expected):
    assert verdict(outcomes) == expected
