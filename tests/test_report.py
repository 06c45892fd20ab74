"""The report's words and numbers on constructed results: names, the one arrow, each unit's
fixed point, the verdict matrix's cells and the plain sentence written from the outcomes."""

import pytest

from test_claims import seed_numbers
from vaelab.claims.verdicts import judge_claims
from vaelab.report import numbers
from vaelab.report.cells import cell_of, claim_cells, groups
from vaelab.report.names import arrows, model_name, walk_name
from vaelab.report.sentences import plain_sentence


def comparison(name, outcome):
    return {"name": name, "outcome": outcome, "measure": name, "unit": "nats", "margin": 1.0,
            "effect": -2.345, "interval": [-3.1, -1.62]}  # fmt: skip


def claim(number, outcomes, verdict="parts disagree"):
    """A claim whose comparisons are {name: outcome}."""
    return {
        "number": number,
        "verdict": verdict,
        "seeds_measured": 10,
        "comparisons": [comparison(n, o) for n, o in outcomes.items()],
    }


def test_one_name_per_model_and_mode_and_one_arrow():
    assert model_name("ae") == "AE" and model_name("vae") == "VAE"
    assert model_name("cvae (no label)") == "CVAE (no label)"
    assert model_name("cvae (true label)") == "CVAE (true label)"
    assert model_name("cvae (wrong label)") == "CVAE (wrong label)"
    assert model_name("m2 (inferred label)") == "M2 (inferred label)"
    assert model_name("pixels") == "pixels"
    assert model_name("conv-vae") == "conv VAE"  # the kind's title, from its record
    assert model_name("conv-cvae (no label)") == "conv CVAE (no label)"
    assert arrows("z=4: 1 -> 8 -> 6 -> 0") == "z=4: 1 → 8 → 6 → 0"
    assert walk_name("1to0") == "1 → 0" and walk_name("7to15") == "7 → 15"


def test_three_significant_figures_and_never_an_exponent():
    assert numbers.sig(0.123456) == "0.123"
    assert numbers.sig(123.456) == "123"
    assert numbers.sig(9.3e-05) == "0.000093"
    assert numbers.sig(3.0) == "3" and numbers.sig(1.6667) == "1.67"
    assert numbers.sig(1234) == "1234" and numbers.sig(-0.5) == "−0.5"
    assert numbers.sig(None) == "—"


def test_a_column_shares_its_decimals_so_small_values_sit_beside_large_ones():
    column = [0.00327, 9.3e-05]
    decimals = numbers.column_decimals(column)
    assert [numbers.fixed(v, decimals) for v in column] == ["0.00327", "0.00009"]
    nll = {"mean": 218.43, "sd": 0.355, "n": 3, "min": 218.0, "max": 218.7}
    assert numbers.column_decimals([nll, 211.6]) == 1
    assert numbers.summary(nll, 1) == "218.4 ± 0.4"
    tiny_sd = {"mean": 0.06926, "sd": 9e-05, "n": 3, "min": 0.0691, "max": 0.0693}
    assert numbers.column_decimals([tiny_sd]) == 5  # the spread shows, two decimals more
    assert numbers.summary(tiny_sd, 5) == "0.06926 ± 0.00009"


def test_effects_use_their_units_fixed_point_with_true_signs():
    assert numbers.effect(0.00327, "share") == "+0.003"
    assert numbers.effect(9.3e-05, "share") == "0.000"  # a zero has no sign
    assert numbers.effect(-2.345, "nats") == "−2.3"
    assert numbers.effect(0.456, "cloud radii") == "+0.46"
    assert numbers.effect(0.0123, "V-measure") == "+0.012"
    assert numbers.effect(0.5, "furlongs", margin=0.25) == "+0.50"  # from the margin
    assert numbers.interval([-3.1, -1.62], "nats") == "−3.1 to −1.6"


@pytest.mark.parametrize(
    ("name", "group", "family", "label"),
    [
        ("vae: NLL falls from z=4 to z=16", "VAE", "sharper", "4→16"),
        ("cvae (no label): more read as another digit at z=4 than at z=64",
         "CVAE (no label)", "fewer misreads", "4→64"),
        ("z=16: cvae (no label) NLL below the AE's", "CVAE (no label)", "", "16"),
        ("z=4: NLL lower with the true label than with a wrong label",
         "true vs wrong label", "", "4"),
        ("z=64: test 4s given label 9 come back as 9", "4 given 9", "label wins", "64"),
        ("1 → 0: more other digits passed at z=16 than at z=64", "walk 1 → 0", "", "16→64"),
        ("vae centre near the origin", "VAE", "", "near 0"),
        ("ae centre farther off the origin than cvae (no label)'s", "CVAE (no label)", "",
         "vs AE"),
        ("ae separates digits better than vae", "VAE", "", "2"),
        ("z=4: ae scores higher than vae", "VAE", "", "4"),
        ("z=64: cvae (no label) scores higher than vae", "CVAE (no label) vs VAE", "", "64"),
        ("something new", "", "", "something new"),
    ],
)  # fmt: skip
def test_a_comparison_becomes_a_cell_of_its_model_and_z(name, group, family, label):
    cell = cell_of({"name": name, "outcome": "supports"}, shown_latent=2)
    assert (cell.group, cell.family, cell.label) == (group, family, label)


def test_every_comparison_the_rules_make_has_a_known_cell():
    claims = [c.to_dict() for c in judge_claims([seed_numbers(+1, s) for s in range(3)])]
    cells = [cell for c in claims for cell in claim_cells(c, 2)]
    assert len(cells) > 40 and all(cell.group for cell in cells), [
        cell.name for cell in cells if not cell.group
    ]
    first = groups(claim_cells(claims[0], 2))
    assert [b["group"] for b in first] == ["AE", "VAE", "CVAE (no label)", "CVAE (true label)"]
    assert [f["family"] for f in first[0]["families"]] == ["sharper", "fewer misreads"]
    assert [f["family"] for f in first[3]["families"]] == [""]  # one kind: not named


def test_the_sentence_says_which_models_and_z_hold_and_which_do_not():
    c2 = claim(2, {
        "z=4: vae NLL below the AE's": "supports",
        "z=4: cvae (no label) NLL below the AE's": "contradicts",
        "z=16: vae NLL below the AE's": "supports",
        "z=16: cvae (no label) NLL below the AE's": "supports",
        "z=64: vae NLL below the AE's": "supports",
        "z=64: cvae (no label) NLL below the AE's": "supports",
    })  # fmt: skip
    assert plain_sentence(c2) == (
        "Holds for the VAE throughout and for the CVAE (no label) at z=16 and 64; "
        "the opposite for the CVAE (no label) at z=4."
    )
    c7 = claim(7, {
        "z=4: ae scores higher than vae": "equivalent",
        "z=4: ae scores higher than cvae (no label)": "equivalent",
        "z=16: vae scores higher than ae": "supports",
        "z=16: cvae (no label) scores higher than ae": "supports",
        "z=64: vae scores higher than ae": "supports",
        "z=64: cvae (no label) scores higher than ae": "inconclusive",
    })  # fmt: skip
    assert plain_sentence(c7) == (
        "Holds for the VAE at z=16 and 64 and for the CVAE (no label) at z=16; "
        "no difference for the VAE and the CVAE (no label) at z=4; undecided elsewhere."
    )


def test_a_group_of_two_kinds_names_the_kind_not_the_measure():
    c1 = claim(1, {
        "ae: NLL falls from z=4 to z=16": "supports",
        "ae: NLL falls from z=16 to z=64": "supports",
        "ae: more read as another digit at z=4 than at z=16": "equivalent",
        "ae: more read as another digit at z=4 than at z=64": "supports",
        "vae: NLL falls from z=4 to z=16": "supports",
        "vae: NLL falls from z=16 to z=64": "inconclusive",
    })  # fmt: skip
    assert plain_sentence(c1) == (
        "Holds for sharpness of the AE throughout, for misreads of the AE at z=4→64 and "
        "for the VAE at z=4→16; no difference for misreads of the AE at z=4→16; "
        "undecided elsewhere."
    )


def test_one_outcome_everywhere_is_said_once():
    names = {"z=4: cvae (no label) scores higher than vae": "inconclusive",
             "z=16: cvae (no label) scores higher than vae": "inconclusive"}  # fmt: skip
    assert plain_sentence(claim(8, names, "inconclusive")) == (
        "Undecided throughout: the CVAE (no label) against the VAE."
    )
    walks = {"1 → 0: more other digits passed at z=4 than at z=16": "equivalent",
             "3 → 7: more other digits passed at z=4 than at z=16": "equivalent"}  # fmt: skip
    assert plain_sentence(claim(4, walks, "contradicted")) == (
        "No difference throughout, where the article predicts one: the walks 1 → 0 and the "
        "walks 3 → 7."
    )


def test_real_verdicts_read_as_plain_sentences():
    shaped = [c.to_dict() for c in judge_claims([seed_numbers(+1, s) for s in range(3)])]
    assert {c["verdict"] for c in shaped} == {"supported"}
    assert plain_sentence(shaped[1]) == "Holds throughout: the VAE and the CVAE (no label)."
    assert plain_sentence(shaped[4]) == "Holds throughout: the VAE and the CVAE (no label)."
    one = [c.to_dict() for c in judge_claims(seed_numbers(+1, 0), seeds=[5])]
    assert plain_sentence(one[0]) == (
        "Too few seeds to decide: measured in 1 seed; each seed's effects are below."
    )
    empty = {"number": 6, "verdict": "not measured", "comparisons": []}
    assert plain_sentence(empty) == "Not measured: this run lacks the numbers its rule needs."
