"""Each claim rule and the verdict rule on constructed per-seed estimates whose answer is known."""

import copy
import json

import numpy as np
import pytest
from scipy import stats

from vaelab.claims.verdicts import (
    CONTRADICTED,
    MISSING,
    SPLIT,
    SUPPORTED,
    TOO_FEW,
    UNDECIDED,
    judge_claims,
    verdict,
)
from vaelab.evaluation.evidence import DRAWS
from vaelab.evaluation.inference import CONTRADICTS, EQUIVALENT, INCONCLUSIVE, SUPPORTS
from vaelab.evaluation.measured import DigitPair, MeasuredError

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
        "misread": {
            m: {
                z: est(share if s > 0 else 0.33 - share, 0.01, n + 20 + i)
                for i, (z, share) in enumerate(zip(ZS, (0.3, 0.1, 0.03), strict=True))
            }
            for m in ("ae", "vae", "cvae (no label)", "cvae (true label)")
        },
        "wins": {
            "4to9": {
                z: {
                    "read as label": est(0.9 if s > 0 else 0.05, 0.01, n + 30),
                    "read as digit": est(0.05 if s > 0 else 0.9, 0.01, n + 31),
                }
                for z in ZS
            }
        },
        "pull": {
            "4to9": {
                z: {
                    "wrong label": est(0.3 if s > 0 else 0.0, 0.01, n + 3),
                    "no label": est(0.02 if s > 0 else 0.3, 0.01, n + 4),
                    "true label": est(0.01, 0.01, n + 6),
                }
                for z in ZS
            }
        },
    }
    passed = (1.5, 0.8, 0.2) if s > 0 else (0.2, 0.8, 1.5)
    others = {
        "1to0": {z: est(v, 0.1, n + 5 + i) for i, (z, v) in enumerate(zip(ZS, passed, strict=True))}
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


def comparison(claim, name):
    return next(c for c in claim.comparisons if c.name == name)


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
    assert walk.value == pytest.approx((0.7 - 0.6 + 0.7) / 3)
    assert walk.sign == {"agree": 2, "of": 3, "p": 0.5}  # a description beside the interval


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


def test_a_precisely_measured_zero_is_equivalent_and_counts_against_the_claim():
    per_seed = copy.deepcopy(ARTICLE)
    for numbers in per_seed:  # the AE's reconstructions are read right at every z: shares 0
        zero = est(0.0, sd=0)
        numbers["reconstruction"]["evidence"]["misread"]["ae"] = dict.fromkeys(ZS, zero)
    claim = judge_claims(per_seed)[0]
    tie = comparison(claim, "ae: more read as another digit at z=4 than at z=64")
    assert (tie.value, tie.low, tie.high, tie.outcome) == (0.0, 0.0, 0.0, EQUIVALENT)
    assert claim.verdict == SPLIT
    assert "the difference it predicts is absent" in claim.reason
    assert "inside ±0.02 share" in claim.reason


def test_a_tiny_but_consistent_lean_is_equivalent_not_support():
    per_seed = copy.deepcopy(ARTICLE)
    for numbers in per_seed:  # the AE names 0.3% more digits than the VAE, in every seed
        knn = numbers["latent"]["evidence"]["knn"]
        knn["ae"], knn["vae"] = est(0.503, sd=0), est(0.5, sd=0)
    claim = judge_claims(per_seed)[5]
    lean = comparison(claim, "ae separates digits better than vae")
    assert lean.low > 0 and lean.high < 0.01 and lean.outcome == EQUIVALENT
    assert claim.verdict == SPLIT


def test_a_difference_smaller_than_the_noise_is_inconclusive():
    per_seed = copy.deepcopy(ARTICLE)
    for i, numbers in enumerate(per_seed):
        knn = numbers["latent"]["evidence"]["knn"]
        knn["ae"], knn["vae"] = est(0.501, 0.01, i), est(0.5, 0.01, 100 + i)
    outcomes = {c.name: c.outcome for c in judge_claims(per_seed)[5].comparisons}
    assert outcomes["ae separates digits better than vae"] == INCONCLUSIVE
    assert outcomes["ae separates digits better than cvae (no label)"] == SUPPORTS


def test_claim_1_is_general_and_shows_the_articles_4_to_9_beside():
    claim = judge_claims(ARTICLE)[0]
    names = [c.name for c in claim.comparisons]
    assert [n for n in names if "another digit" in n] == [
        f"{m}: more read as another digit at z=4 than at z={hi}"
        for m in ("ae", "vae", "cvae (no label)")
        for hi in (16, 64)
    ]
    assert sum("NLL falls" in n for n in names) == 4 * 2  # four modes, two steps up in z
    assert [c.name for c in claim.context] == [
        f"{m}: share of test 4s read as 9 (the article's example)"
        for m in ("ae", "vae", "cvae (no label)")
    ]
    assert claim.context[0].numbers[0] == {"z=4": 0.3, "z=64": 0.0}
    misread = comparison(claim, "vae: more read as another digit at z=4 than at z=16")
    assert misread.unit == "share" and misread.margin == 0.02
    assert misread.value == pytest.approx(0.2)


def test_claim_3_judges_whether_the_wrong_label_wins():
    claim = judge_claims(ARTICLE)[2]
    wins = comparison(claim, "z=4: test 4s given label 9 come back as 9")
    assert wins.measure == "given label 9: share read as 9 − read as 4"
    assert wins.value == pytest.approx(0.85) and wins.outcome == SUPPORTS
    assert wins.sides == {"read as 9": pytest.approx(0.9), "read as 4": pytest.approx(0.05)}
    leans_only = copy.deepcopy(ARTICLE)
    for numbers in leans_only:  # the label pulls the probability up but the 4 stays a 4
        wins_of = numbers["reconstruction"]["evidence"]["wins"]["4to9"]
        for z in ZS:
            wins_of[z] = {"read as label": est(0.1, 0.01), "read as digit": est(0.85, 0.01)}
    claim = judge_claims(leans_only)[2]
    assert comparison(claim, "z=4: test 4s given label 9 lean toward 9").outcome == SUPPORTS
    assert comparison(claim, "z=4: test 4s given label 9 come back as 9").outcome == CONTRADICTS
    assert claim.verdict == SPLIT


def test_claim_4_is_a_trend_at_every_step_not_only_its_ends():
    flat = copy.deepcopy(ARTICLE)
    for numbers in flat:  # as many digits at z=16 as at z=64
        walks = numbers["interpolation"]["evidence"]["others"]["1to0"]
        walks["16"] = copy.deepcopy(walks["64"])
    claim = judge_claims(flat)[3]
    outcomes = {c.name: c.outcome for c in claim.comparisons}
    assert outcomes == {
        "1 → 0: more other digits passed at z=4 than at z=16": SUPPORTS,
        "1 → 0: more other digits passed at z=16 than at z=64": EQUIVALENT,
    }
    assert claim.verdict == SPLIT


def test_claim_5_needs_the_vae_centred_near_zero_in_its_own_right():
    off = copy.deepcopy(ARTICLE)
    for numbers in off:  # the VAE sits 0.6 radii off the origin, the AE further still
        numbers["latent"]["evidence"]["offset"]["vae"] = est(0.6, 0.01)
    claim = judge_claims(off)[4]
    outcomes = {c.name: c.outcome for c in claim.comparisons}
    assert outcomes == {
        "vae centre near the origin": CONTRADICTS,
        "cvae (no label) centre near the origin": SUPPORTS,
        "ae centre farther off the origin than vae's": SUPPORTS,
        "ae centre farther off the origin than cvae (no label)'s": SUPPORTS,
    }
    assert claim.verdict == SPLIT
    near = comparison(judge_claims(ARTICLE)[4], "vae centre near the origin")
    assert near.expect == 0 and near.to_dict()["expect"] == "near zero" and near.sign is None


def test_intervals_of_one_claim_hold_jointly_at_95_percent():
    claims = judge_claims(ARTICLE)
    for claim in claims:
        m = len(claim.comparisons)
        assert all(c.level == pytest.approx(1 - 0.05 / m) for c in claim.comparisons)


def test_three_seeds_that_agree_but_spread_get_students_t_on_the_seeds():
    per_seed = copy.deepcopy(ARTICLE)
    for numbers, ae in zip(per_seed, (0.6, 0.7, 0.8), strict=True):
        numbers["latent"]["evidence"]["knn"]["ae"] = est(ae, sd=0)
        numbers["latent"]["evidence"]["knn"]["vae"] = est(0.5, sd=0)
    claim = judge_claims(per_seed)[5]
    found = comparison(claim, "ae separates digits better than vae")
    half = stats.t.ppf(1 - 0.05 / 2 / 2, 2) * 0.1 / np.sqrt(3)  # two comparisons: 97.5% each
    assert (found.low, found.high) == pytest.approx((0.2 - half, 0.2 + half))
    assert found.seed_sd == pytest.approx(0.1) and found.outcome == INCONCLUSIVE
    assert found.sign == {"agree": 3, "of": 3, "p": 0.125}
    assert claim.decidable == pytest.approx(stats.t.ppf(1 - 0.05 / 2 / 2, 2) / np.sqrt(3))
    assert found.seeds_to_decide == 5  # 4 seeds: 4.18 * 0.1 / 2 = 0.209 > 0.2; 5: 0.156


def test_one_seed_is_too_few_and_a_plain_dict_is_one_seed():
    one = judge_claims(ARTICLE[0])
    assert [c.to_dict() for c in one] == [c.to_dict() for c in judge_claims([ARTICLE[0]], [0])]
    assert all(c.provisional and c.to_dict()["provisional"] for c in one)
    assert [c.verdict for c in one] == [TOO_FEW] * 8
    assert all(c.decidable is None for c in one)
    assert "Run at least two seeds" in one[0].reason
    first = one[0].comparisons[0]
    assert first.outcome == INCONCLUSIVE and not first.holds_level
    assert first.per_seed[0]["outcome"] == SUPPORTS  # the seed's own reading, described


def test_the_provisional_flag_counts_the_seeds_measured_not_named():
    claims = judge_claims([ARTICLE[0], None, {}], seeds=[0, 5, 7])
    assert [c.verdict for c in claims] == [TOO_FEW] * 8
    assert all(c.provisional and c.seeds_measured == 1 for c in claims)
    first = claims[1].comparisons[0]
    assert first.per_seed[1] is None and first.per_seed[2] is None
    assert claims[1].to_dict()["seeds"] == [0, 5, 7]
    two = judge_claims([ARTICLE[0], None, ARTICLE[1]], seeds=[0, 5, 7])
    assert not any(c.provisional for c in two) and two[0].seeds_measured == 2
    assert [c.verdict for c in two] == [SUPPORTED] * 8


def test_nothing_measured_is_not_measured():
    assert verdicts({}) == [MISSING] * 8
    assert verdicts([]) == [MISSING] * 8
    assert verdicts([{"latent": {}}, {"clustering": {}}]) == [MISSING] * 8
    assert "were not measured" in judge_claims({})[0].reason


@pytest.mark.parametrize(
    ("path", "name"),
    [
        (("reconstruction", "evidence", "misread"), "misread"),
        (("reconstruction", "evidence", "pull", "4to9", "4", "no label"), "no label"),
        (("reconstruction", "latents"), "latents"),
        (("interpolation", "walks", "1to0", "4", "path"), "path"),
        (("latent", "evidence", "knn"), "knn"),
        (("clustering", "evidence"), "evidence"),
    ],
)
def test_a_number_a_rule_reads_that_is_missing_or_renamed_is_an_error_not_unmeasured(path, name):
    numbers = copy.deepcopy(ARTICLE[0])
    tree = numbers
    for key in path[:-1]:
        tree = tree[key]
    tree[path[-1] + "_renamed"] = tree.pop(path[-1])
    with pytest.raises(MeasuredError, match=repr(name)):
        judge_claims([numbers, ARTICLE[1]])


def test_seeds_must_name_every_set_of_numbers():
    with pytest.raises(ValueError, match="2 seeds named for 3"):
        judge_claims(ARTICLE, seeds=[0, 1])


def test_to_dict_is_strict_json_with_effects_intervals_margins_and_per_seed_evidence():
    claims = judge_claims([ARTICLE[0], FLIPPED[1]], seeds=[3, 4])
    data = json.loads(json.dumps([c.to_dict() for c in claims], allow_nan=False))
    walk = data[3]["comparisons"][0]
    assert walk["measure"] == "other digits passed, z=4 − z=16" and walk["unit"] == "digits"
    assert walk["expect"] == "positive" and len(walk["interval"]) == 2
    assert walk["margin"] == 0.1 and walk["margin_reason"].startswith("0.1 other digits")
    assert walk["seeds"] == 2 and walk["agree_in_sign"] == {"agree": 1, "of": 2, "p": 0.75}
    assert walk["half_width"] == pytest.approx((walk["interval"][1] - walk["interval"][0]) / 2)
    assert [s["outcome"] for s in walk["per_seed"]] == [SUPPORTS, CONTRADICTS]
    assert walk["article"].startswith("z=4: 1 → 8 → 6 → 0")
    assert walk["shown"][0] == {"z=4 (first pair)": "1 → 8 → 6 → 0", "z=64 (first pair)": "1 → 0"}
    assert walk["text"].startswith("other digits passed, z=4 − z=16 = ")
    assert data[0]["seeds"] == [3, 4] and data[0]["provisional"] is False
    assert data[0]["verdict"] == UNDECIDED and data[0]["reason"]
    assert data[0]["seeds_measured"] == 2 and data[0]["decidable_seed_sds"] > 1
    assert {m["unit"] for m in data[0]["margins"]} == {"nats", "share"}


def test_claim_2_and_3_compare_in_the_direction_the_article_states():
    claims = judge_claims(ARTICLE)
    two = {c.name: c for c in claims[1].comparisons}
    vae = two["z=16: vae NLL below the AE's"]
    assert vae.measure == "VAE NLL − AE NLL" and vae.value == pytest.approx(-10)
    assert vae.sides == {"vae": pytest.approx(110), "ae": pytest.approx(120)}
    assert vae.margin == 1.0 and vae.unit == "nats"
    three = {c.name: c for c in claims[2].comparisons}
    assert three["z=4: NLL lower with the true label than with no label"].value == pytest.approx(-9)
    pull = three["z=64: test 4s given label 9 lean toward 9"]
    assert pull.value == pytest.approx(0.28) and pull.article.startswith("the 4 given label 9")


def test_claim_3_shows_the_style_experiment_without_judging_it():
    style = {"latents": [4], "by_latent": {"4": {"read_as_given": {"mean": 0.1}, "images": 9}}}
    claim = judge_claims([dict(n, style=style) for n in ARTICLE])[2]
    assert claim.verdict == SUPPORTED and len(claim.context) == 1
    assert claim.context[0].numbers[0] == {"read as the label given (mean)": 0.1, "images": 9}


def test_clustering_between_4_and_16_is_not_what_the_article_spoke_of():
    between = copy.deepcopy(ARTICLE[:2])
    for numbers in between:
        vm = numbers["clustering"]["evidence"]["v_measure"]
        numbers["clustering"]["evidence"]["v_measure"] = {"8": vm["4"]}
    assert judge_claims(between)[6].verdict == MISSING
    assert judge_claims(between)[7].verdict == SUPPORTED  # claim 8 holds at every z


@pytest.mark.parametrize(
    ("outcomes", "expected"),
    [
        ([SUPPORTS, SUPPORTS], SUPPORTED),
        ([CONTRADICTS], CONTRADICTED),
        ([EQUIVALENT], CONTRADICTED),
        ([CONTRADICTS, INCONCLUSIVE], CONTRADICTED),
        ([EQUIVALENT, INCONCLUSIVE], CONTRADICTED),
        ([SUPPORTS, CONTRADICTS], SPLIT),
        ([SUPPORTS, EQUIVALENT], SPLIT),
        ([SUPPORTS, CONTRADICTS, INCONCLUSIVE], SPLIT),
        ([SUPPORTS, INCONCLUSIVE], UNDECIDED),
        ([INCONCLUSIVE], UNDECIDED),
        ([], MISSING),
    ],
)
def test_verdict(outcomes, expected):
    assert verdict(outcomes) == expected


def test_a_digit_pair_is_read_from_its_key_and_written_back():
    assert DigitPair.parse("4to9") == DigitPair(4, 9) and DigitPair(1, 0).key == "1to0"
    assert str(DigitPair.parse("10to3")) == "10to3"
    for bad in ("4-9", "to9", "4to", "ato9", "4to9to1"):
        with pytest.raises(MeasuredError, match="not a digit pair"):
            DigitPair.parse(bad)
