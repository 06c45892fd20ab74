"""The claims maps: columns of effects and intervals, one judged column, and their figure."""

import copy
import json

import numpy as np
import pytest

from test_claims import ARTICLE, FLIPPED
from vaelab.claims.maps import ClaimsMap, caption
from vaelab.claims.verdicts import judge_claims
from vaelab.report.trajectories import claim_trajectories, trajectories_figure


def column(per_seed):
    return [c.to_dict() for c in judge_claims(per_seed, [0, 1, 2])]


def three_columns():
    found = ClaimsMap()
    found.append(column(FLIPPED))
    found.append(column([ARTICLE[0], FLIPPED[1], ARTICLE[2]]))
    found.append(column(ARTICLE))
    return found.to_dict(2, [0, 1, 2], "training", "the last column (epoch 4)")


def test_every_column_carries_each_comparisons_effect_and_interval_and_one_is_judged():
    found = json.loads(json.dumps(three_columns(), allow_nan=False))
    assert found["verdicts"]["4"] == ["contradicted", "inconclusive", "supported"]
    assert found["judged"] == 2 and found["descriptive"] == [0, 1]
    name = "1 → 0: more other digits passed at z=4 than at z=16"
    assert [c[name] for c in found["comparisons"]["4"]] == [
        "contradicts",
        "inconclusive",
        "supports",
    ]
    last = found["effects"]["4"][2][name]
    final = next(c for c in column(ARTICLE)[3]["comparisons"] if c["name"] == name)
    assert last == {k: final[k] for k in last} and set(last) >= {"effect", "interval", "margin"}
    assert (
        "same 3 seeds" in found["caption"] and "Only the last column (epoch 4)" in found["caption"]
    )


def test_a_claim_first_judged_in_a_later_column_has_empty_cells_before():
    found = ClaimsMap(reasons={})
    no_walks = copy.deepcopy(ARTICLE)
    for numbers in no_walks:
        del numbers["interpolation"]
    found.append(column(no_walks))
    found.append(column(ARTICLE))
    assert len(found) == 2 and found.verdicts["4"] == ["not measured", "supported"]
    assert found.effects["4"][0] == {} and len(found.effects["4"][1]) == 2
    assert len(found.reasons["4"]) == 2 and len(found.reasons["1"]) == 2


def test_the_caption_states_what_the_seeds_can_decide():
    assert "2 seeds an effect must exceed about 9 times" in caption(2, "settings", "C = 0.1")
    assert "not training" in caption(3, "training", "x") and "a setting" in caption(3, "s", "x")
    assert "One seed: no column can decide" in caption(1, "training", "x")


def test_the_trajectory_figure_draws_each_effect_in_margins_with_the_prediction_up():
    found = three_columns()
    fig = trajectories_figure(found, ["epoch 1", "epoch 2", "epoch 4"], "over training")
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert len(panels) == 8
    walk = panels[3]  # claim 4: two comparisons, each a line through its three columns
    lines = [line for line in walk.lines if len(line.get_xdata()) == 3]
    effects = [
        [found["effects"]["4"][i][n]["effect"] / 0.1 for i in range(3)]
        for n in found["effects"]["4"][0]
    ]
    for line, expected in zip(lines, effects, strict=True):
        np.testing.assert_allclose(line.get_ydata(), expected)
    two = panels[1]  # claim 2 predicts a negative difference: drawn turned, so up is right
    dots = [line for line in two.lines if len(line.get_xdata()) == 3]
    assert all(np.all(np.asarray(d.get_ydata())[[0, 2]] * [-1, 1] > 0) for d in dots)


def test_one_claims_figure_draws_each_comparison_in_its_own_unit():
    found = three_columns()
    fig = claim_trajectories(found, 2, ["a", "b", "c"], "claim 2")
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert len(panels) == len(found["effects"]["2"][0]) == 6
    line = next(x for x in panels[0].lines if len(x.get_xdata()) == 3)
    assert line.get_ydata()[2] == pytest.approx(-10)  # VAE NLL − AE NLL, nats
    assert panels[0].get_ylabel() == "nats"
