"""Each claim rule on constructed per-seed numbers whose verdict is known."""

import copy
import json

import numpy as np
import pytest

from vaelab.claims import (
    AGREES,
    DISAGREES,
    FAILS,
    HOLDS,
    MISSING,
    MIXED,
    UNSETTLED,
    judge_claims,
    verdict,
)

ZS = ("4", "16", "64")


def recon(nll_by_mode, nines=(0.5, 0.2, 0.1), pull=(0.02, 0.30)):
    """Experiment 1's numbers; `pull` = P(wrong label) per image with no label / given it."""
    table = {mode: {} for mode in nll_by_mode}
    for mode, nlls in nll_by_mode.items():
        for z, nll, nine in zip(ZS, nlls, nines, strict=True):
            table[mode][z] = {"nll": nll, "fours_read_as_nine": nine}
    rng = np.random.default_rng(0)
    base = rng.uniform(0.0, 0.04, 40) + pull[0]
    moved = (base + (pull[1] - pull[0]) + rng.normal(0, 0.01, 40)).clip(0, 1)
    one = {
        "images": 40,
        "prob_given": {"wrong label": moved.tolist(), "no label": base.tolist()},
        "mean_prob_given": {"wrong label": float(moved.mean()), "no label": float(base.mean())},
        "read_as_given": {"wrong label": 0.0, "no label": 0.0},
    }
    return {"latents": [4, 16, 64], "table": table, "label_pull": {"4to9": dict.fromkeys(ZS, one)}}


def runs(mean, n=20, sd=0.01, seed=0):
    return (mean + np.random.default_rng(seed).normal(0, sd, n)).tolist()


def clustering(v, sd=0.01):  # v[row] = mean V-measure at z = 4, 16, 64
    return {
        "by_latent": {
            z: {row: {"v_measure": {"values": runs(m[i], sd=sd, seed=i)}} for row, m in v.items()}
            for i, z in enumerate(ZS)
        }
    }


def latent(ae_centre, vae_centre, knn):  # knn = whitened kNN accuracy of ae, vae, cvae
    def model(centre, acc):
        norm = float(np.hypot(*centre))
        return {"centre": centre, "centre_norm": norm, "knn_accuracy_whitened": acc}

    return {
        "latent": 2,
        "models": {
            "ae": model(ae_centre, knn[0]),
            "vae": model(vae_centre, knn[1]),
            "cvae (no label)": model(vae_centre, knn[2]),
        },
    }


def walks(low_path, high_path):
    return {"walks": {"1to0": {"4": {"path": low_path}, "64": {"path": high_path}}}}


ARTICLE = {
    "reconstruction": recon(
        {
            "ae": [150, 120, 110],
            "vae": [140, 110, 100],
            "cvae (no label)": [139, 109, 99],
            "cvae (true label)": [130, 100, 90],
            "cvae (wrong label)": [160, 130, 120],
        }
    ),
    "interpolation": walks([1, 8, 6, 0], [1, 0]),
    "latent": latent([-10.0, -10.0], [0.1, 0.0], (0.7, 0.5, 0.4)),
    "clustering": clustering(
        {"ae": [0.6, 0.5, 0.5], "vae": [0.5, 0.6, 0.6], "cvae (no label)": [0.55, 0.7, 0.7]}
    ),
}

FLIPPED = {
    "reconstruction": recon(
        {
            "ae": [100, 110, 120],
            "vae": [140, 150, 160],
            "cvae (no label)": [140, 150, 160],
            "cvae (true label)": [200, 210, 220],
            "cvae (wrong label)": [130, 140, 150],
        },
        nines=(0.0, 0.1, 0.2),
        pull=(0.30, 0.02),
    ),
    "interpolation": walks([1, 0], [1, 8, 0]),
    "latent": latent([0.1, 0.1], [3.0, 3.0], (0.3, 0.5, 0.6)),
    "clustering": clustering(
        {"ae": [0.4, 0.7, 0.7], "vae": [0.5, 0.6, 0.6], "cvae (no label)": [0.45, 0.5, 0.5]}
    ),
}


def verdicts(per_seed, seeds=None):
    return [c.verdict for c in judge_claims(per_seed, seeds)]


def test_article_shaped_numbers_in_every_seed_make_every_claim_hold():
    claims = judge_claims([ARTICLE] * 3, seeds=[0, 1, 2])
    assert [c.verdict for c in claims] == [HOLDS] * 8
    assert all(c.comparisons and not c.provisional for c in claims)
    assert {cmp.label for c in claims for cmp in c.comparisons} == {AGREES}


def test_contradicting_numbers_in_every_seed_make_every_claim_fail():
    claims = judge_claims([FLIPPED, FLIPPED])
    assert [c.verdict for c in claims] == [FAILS] * 8
    assert {cmp.status for c in claims for cmp in c.comparisons} == {DISAGREES}


def test_a_seed_that_disagrees_leaves_each_comparison_unsettled_and_every_claim_mixed():
    claims = judge_claims([ARTICLE, FLIPPED, ARTICLE], seeds=[0, 1, 2])
    assert [c.verdict for c in claims] == [MIXED] * 8
    walk = claims[3].comparisons[0]
    assert walk.outcomes == (True, False, True) and walk.label == "unsettled (2 of 3)"
    assert walk.numbers[1]["z=4"] == "1 → 0" and walk.numbers[0]["z=4 other digits"] == 2


def test_one_comparison_unsettled_makes_the_claim_mixed_while_the_others_hold():
    other = copy.deepcopy(ARTICLE)
    rows = other["clustering"]["by_latent"]["16"]
    rows["vae"]["v_measure"]["values"] = runs(0.4)  # below the AE at z=16 in this seed only
    claims = judge_claims([ARTICLE, other])
    labels = {c.name: c.label for c in claims[6].comparisons}
    assert labels["z=16: vae scores higher than ae"] == "unsettled (1 of 2)"
    assert list(labels.values()).count(AGREES) == len(labels) - 1
    assert claims[6].verdict == MIXED and claims[5].verdict == HOLDS


def test_one_seed_is_provisional_and_a_plain_dict_is_one_seed():
    one = judge_claims(ARTICLE)
    assert [c.to_dict() for c in one] == [c.to_dict() for c in judge_claims([ARTICLE], [0])]
    assert all(c.provisional and c.to_dict()["provisional"] for c in one)
    assert [c.verdict for c in one] == [HOLDS] * 8


def test_a_seed_without_numbers_leaves_comparisons_unsettled():
    claims = judge_claims([ARTICLE, None, {}], seeds=[0, 5, 7])
    assert [c.verdict for c in claims] == [MIXED] * 8
    first = claims[1].comparisons[0]
    assert first.outcomes == (True, None, None) and first.label == f"{UNSETTLED} (1 of 3)"
    assert first.numbers[1] is None and claims[1].to_dict()["seeds"] == [0, 5, 7]


def test_nothing_measured_is_not_measured():
    assert verdicts({}) == [MISSING] * 8
    assert verdicts([]) == [MISSING] * 8
    assert verdicts([{"latent": {}}, {"clustering": {"by_latent": {}}}]) == [MISSING] * 8


def test_seeds_must_name_every_set_of_numbers():
    with pytest.raises(ValueError, match="2 seeds named for 3"):
        judge_claims([ARTICLE] * 3, seeds=[0, 1])


def test_to_dict_is_strict_json_with_per_seed_outcomes_and_numbers():
    claims = judge_claims([ARTICLE, FLIPPED], seeds=[3, 4])
    data = json.loads(json.dumps([c.to_dict() for c in claims], allow_nan=False))
    walk = data[3]["comparisons"][0]
    assert walk["outcomes"] == [True, False] and walk["label"] == "unsettled (1 of 2)"
    assert walk["article"].startswith("z=4: 1 → 8 → 6 → 0")
    assert data[4]["comparisons"][-1]["article"] == "centre around (-10, -10): 14.1 from the origin"
    assert data[0]["seeds"] == [3, 4] and data[0]["provisional"] is False


def test_claim_3_sees_a_shift_toward_the_wrong_label_even_when_it_never_wins():
    claim = judge_claims(ARTICLE)[2]
    pulls = [c for c in claim.comparisons if "rises over no label" in c.name]
    assert len(pulls) == 3 and all(c.status == AGREES for c in pulls)
    numbers = pulls[0].numbers[0]
    assert numbers["label wins"] == 0.0 and numbers["p (Wilcoxon, one-sided)"] < 1e-6
    same = copy.deepcopy(ARTICLE)
    pull = same["reconstruction"]["label_pull"]["4to9"]["4"] = copy.deepcopy(
        same["reconstruction"]["label_pull"]["4to9"]["4"]
    )
    pull["prob_given"]["wrong label"] = pull["prob_given"]["no label"]  # no shift at all
    moved = {c.name: c.status for c in judge_claims(same)[2].comparisons}
    assert moved["z=4: test 4s given label 9: P(9) rises over no label"] == DISAGREES


def test_claim_3_shows_the_style_experiment_without_judging_it():
    with_style = dict(
        ARTICLE,
        style={"latents": [4], "by_latent": {"4": {"read_as_given": {"mean": 0.1}, "images": 9}}},
    )
    claim = judge_claims(with_style)[2]
    assert claim.verdict == HOLDS and len(claim.context) == 1
    assert claim.context[0].numbers[0] == {"read as the label given (mean)": 0.1, "images": 9}
    assert claim.to_dict()["context"][0]["outcomes"] == [None]


def test_claim_4_counts_other_digits_passed_not_flicker():
    flicker = dict(ARTICLE, interpolation=walks([1, 7, 1, 7, 0], [1, 0]))
    assert judge_claims(flicker)[3].comparisons[0].numbers[0]["z=4 other digits"] == 1
    assert judge_claims(flicker)[3].verdict == HOLDS
    ends_only = dict(ARTICLE, interpolation=walks([1, 0, 1, 0], [1, 0]))
    assert judge_claims(ends_only)[3].verdict == FAILS


def test_claim_5_measures_distances_in_prior_sd_units():
    claim = judge_claims(ARTICLE)[4]
    ae = claim.comparisons[-1].numbers[0]
    assert ae["radius holding 99% of N(0, I)"] == pytest.approx(np.sqrt(-2 * np.log(0.01)))
    near = dict(ARTICLE, latent=latent([2.0, 2.0], [0.1, 0.0], (0.7, 0.5, 0.4)))
    statuses = [c.status for c in judge_claims(near)[4].comparisons]
    assert statuses == [AGREES, AGREES, DISAGREES]  # 2.8 sd: inside the prior's 99% ball


def test_claim_6_reads_the_whitened_separation_only():
    whitened = dict(ARTICLE, latent=latent([-10.0, -10.0], [0.0, 0.0], (0.5, 0.6, 0.4)))
    for model, raw in zip(("ae", "vae", "cvae (no label)"), (0.9, 0.1, 0.1), strict=True):
        whitened["latent"]["models"][model]["knn_accuracy"] = raw  # the raw order disagrees
    assert [c.status for c in judge_claims(whitened)[5].comparisons] == [DISAGREES, AGREES]
    old = dict(ARTICLE, latent={"latent": 2, "models": {"ae": {"knn_accuracy": 0.9}}})
    assert judge_claims(old)[5].verdict == MISSING


def test_clustering_claims_test_the_runs_rather_than_compare_means():
    noisy = dict(
        ARTICLE,
        clustering=clustering(
            {
                "ae": [0.6, 0.5, 0.5],
                "vae": [0.59, 0.51, 0.51],
                "cvae (no label)": [0.58, 0.52, 0.52],
            },
            sd=0.2,
        ),
    )
    claims = judge_claims(noisy)
    assert claims[6].verdict == FAILS and claims[7].verdict == FAILS  # means ordered, not shown
    p = claims[7].comparisons[0].numbers[0]["p (Mann-Whitney, one-sided)"]
    assert 0.05 < p < 1
    between = dict(
        ARTICLE, clustering={"by_latent": {"8": ARTICLE["clustering"]["by_latent"]["4"]}}
    )
    assert judge_claims(between)[6].verdict == MISSING  # the article said nothing about z=8


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ([AGREES, AGREES], HOLDS),
        ([DISAGREES], FAILS),
        ([AGREES, DISAGREES], MIXED),
        ([DISAGREES, UNSETTLED], MIXED),
        ([], MISSING),
    ],
)
def test_verdict(statuses, expected):
    assert verdict(statuses) == expected
