"""Each claim rule on constructed numbers whose verdict is known."""

import pytest

from vaelab.claims import FAILS, HOLDS, MISSING, MIXED, judge_claims, verdict


def recon(nll_by_mode, nines=None, lean=0.9):
    table = {}
    for mode, nlls in nll_by_mode.items():
        table[mode] = {}
        for i, (z, nll) in enumerate(zip(("4", "16", "64"), nlls, strict=True)):
            row = {"nll": nll, "fours_read_as_nine": (nines or [0.5, 0.2, 0.1])[i]}
            if mode == "cvae (wrong label)":
                row["read_as_given_label"] = lean
            table[mode][z] = row
    return {"latents": [4, 16, 64], "table": table}


def clustering(v):  # v[row] = [z4, z16, z64] mean V-measure
    return {
        "by_latent": {
            z: {row: {"v_measure": {"mean": vals[i]}} for row, vals in v.items()}
            for i, z in enumerate(("4", "16", "64"))
        }
    }


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
    "interpolation": {
        "walks": {
            "1to0": {
                "4": {"changes": 3, "path": [1, 8, 6, 0]},
                "64": {"changes": 1, "path": [1, 0]},
            }
        }
    },
    "latent": {
        "models": {
            "ae": {"centre_norm": 14.0, "mean_radius": 15.0, "knn_accuracy": 0.7},
            "vae": {"centre_norm": 0.1, "mean_radius": 1.2, "knn_accuracy": 0.5},
            "cvae (no label)": {"centre_norm": 0.2, "mean_radius": 1.1, "knn_accuracy": 0.4},
        }
    },
    "clustering": clustering(
        {"ae": [0.6, 0.5, 0.5], "vae": [0.5, 0.6, 0.6], "cvae (no label)": [0.55, 0.7, 0.7]}
    ),
}


def test_numbers_shaped_like_the_article_make_every_claim_hold():
    assert [c.verdict for c in judge_claims(ARTICLE)] == [HOLDS] * 8


def test_contradicting_numbers_make_claims_fail():
    flipped = {
        "reconstruction": recon(
            {
                "ae": [100, 110, 120],
                "vae": [140, 150, 160],
                "cvae (no label)": [140, 150, 160],
                "cvae (true label)": [200, 210, 220],
                "cvae (wrong label)": [130, 140, 150],
            },
            nines=[0.0, 0.1, 0.2],
            lean=0.1,
        ),
        "interpolation": {
            "walks": {
                "1to0": {
                    "4": {"changes": 1, "path": [1, 0]},
                    "64": {"changes": 2, "path": [1, 8, 0]},
                }
            }
        },
        "latent": {
            "models": {
                "ae": {"centre_norm": 0.1, "mean_radius": 1.0, "knn_accuracy": 0.3},
                "vae": {"centre_norm": 3.0, "mean_radius": 3.0, "knn_accuracy": 0.5},
                "cvae (no label)": {"centre_norm": 3.0, "mean_radius": 3.0, "knn_accuracy": 0.6},
            }
        },
        "clustering": clustering(
            {"ae": [0.4, 0.7, 0.7], "vae": [0.5, 0.6, 0.6], "cvae (no label)": [0.45, 0.5, 0.5]}
        ),
    }
    assert [c.verdict for c in judge_claims(flipped)] == [FAILS] * 8


def test_partial_agreement_is_mixed_and_missing_data_is_not_measured():
    mixed = dict(
        ARTICLE,
        clustering=clustering(
            {"ae": [0.6, 0.7, 0.5], "vae": [0.5, 0.6, 0.6], "cvae (no label)": [0.55, 0.7, 0.7]}
        ),
    )
    assert judge_claims(mixed)[6].verdict == MIXED
    assert [c.verdict for c in judge_claims({})] == [MISSING] * 8


@pytest.mark.parametrize(
    ("checks", "expected"),
    [([True, True], HOLDS), ([False], FAILS), ([True, False], MIXED), ([], MISSING)],
)
def test_verdict(checks, expected):
    assert verdict(checks) == expected
