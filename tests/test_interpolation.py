"""Experiment 2: the walk's geometry, the reading summaries, the GIF and the whole run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from matplotlib.figure import Figure as MplFigure
from PIL import Image

from vaelab.core.config import ExperimentConfig, ModelConfig
from vaelab.core.errors import VaelabError
from vaelab.experiments import interpolation
from vaelab.experiments.common import StudyData
from vaelab.experiments.interpolation import (
    count_changes,
    digit_path,
    latent_walk,
    save_gif,
    strip_figure,
    strip_frames,
)
from vaelab.models.classifier import DigitClassifier
from vaelab.models.kinds import build_model


def untrained(kind: str = "vae", latent: int = 4, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(ModelConfig(kind=kind, latent=latent)).eval()


@pytest.fixture
def images() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return torch.rand(784, generator=gen), torch.rand(784, generator=gen)


@torch.no_grad()
def test_walk_ends_are_the_reconstructions_and_middle_is_the_mean(images: tuple) -> None:
    model = untrained()
    x0, x1 = images
    frames = latent_walk(model, x0, x1, steps=7)
    assert frames.shape == (7, 784)
    mu = model.encode(torch.stack([x0, x1])).mu
    torch.testing.assert_close(frames[0], torch.sigmoid(model.decode(mu[:1]))[0], rtol=0, atol=1e-7)
    torch.testing.assert_close(
        frames[-1], torch.sigmoid(model.decode(mu[1:]))[0], rtol=0, atol=1e-7
    )
    torch.testing.assert_close(frames[0], model.reconstruct(x0[None])[0], rtol=0, atol=1e-6)
    torch.testing.assert_close(frames[-1], model.reconstruct(x1[None])[0], rtol=0, atol=1e-6)
    middle = torch.sigmoid(model.decode((mu[:1] + mu[1:]) / 2))[0]
    torch.testing.assert_close(frames[3], middle, rtol=0, atol=1e-7)


@torch.no_grad()
def test_walk_is_a_straight_line_in_latent_space(images: tuple) -> None:
    """Every frame is the decode of (1 - t) mu0 + t mu1 at evenly spaced t."""
    model = untrained()
    x0, x1 = images
    frames = latent_walk(model, x0, x1, steps=5)
    mu = model.encode(torch.stack([x0, x1])).mu
    for i, t in enumerate(np.linspace(0, 1, 5)):
        z = (1 - t) * mu[0] + t * mu[1]
        torch.testing.assert_close(frames[i], torch.sigmoid(model.decode(z[None].float()))[0])


@torch.no_grad()
def test_cvae_walk_uses_the_labels(images: tuple) -> None:
    model = untrained("cvae")
    x0, x1 = images
    y = torch.tensor([3])
    frames = latent_walk(model, x0, x1, steps=4, y0=3, y1=3)
    torch.testing.assert_close(frames[0], model.reconstruct(x0[None], y)[0], rtol=0, atol=1e-6)
    unlabelled = latent_walk(model, x0, x1, steps=4)
    assert not torch.allclose(frames, unlabelled)
    with pytest.raises(VaelabError, match="both ends"):
        latent_walk(model, x0, x1, steps=4, y0=3)


def test_walk_needs_two_steps(images: tuple) -> None:
    with pytest.raises(VaelabError, match="at least 2"):
        latent_walk(untrained(), *images, steps=1)


def test_changes_and_path_on_known_readings() -> None:
    readings = [1, 1, 8, 8, 6, 0, 0]
    assert digit_path(readings) == [1, 8, 6, 0]
    assert count_changes(readings) == 3
    assert digit_path([1] * 30) == [1] and count_changes([1] * 30) == 0
    assert digit_path([]) == [] and count_changes([]) == 0
    assert count_changes([1, 0, 1, 0]) == 3  # a return to an earlier digit counts again


@given(st.lists(st.integers(0, 9), min_size=1, max_size=60))
def test_changes_equal_path_length_minus_one(readings: list[int]) -> None:
    path = digit_path(readings)
    assert count_changes(readings) == len(path) - 1
    assert path[0] == readings[0] and path[-1] == readings[-1]
    assert all(a != b for a, b in zip(path, path[1:], strict=False))


def ramp(steps: int) -> torch.Tensor:
    """Frames that brighten step by step, so no two consecutive frames are alike."""
    return torch.linspace(0, 1, steps)[:, None].expand(steps, 784).clone()


def test_gif_is_an_animated_looping_upscaled_walk(tmp_path: Path) -> None:
    path = tmp_path / "figures" / "walk.gif"
    save_gif(ramp(12), path, scale=3, duration_ms=50, endpoint_ms=400)
    with Image.open(path) as gif:
        assert gif.is_animated and gif.n_frames == 12
        assert gif.size == (84, 84)
        assert gif.info["loop"] == 0
        durations = []
        for index in range(gif.n_frames):
            gif.seek(index)
            durations.append(gif.info["duration"])
            assert np.ptp(np.asarray(gif.convert("L"))) == 0  # each ramp frame is flat grey
    assert durations == [400] + [50] * 10 + [400]


def test_gif_rejects_wrong_shapes(tmp_path: Path) -> None:
    with pytest.raises(VaelabError, match="frames"):
        save_gif(torch.zeros(3, 28, 28), tmp_path / "x.gif")


def test_strip_shows_first_last_and_readings() -> None:
    assert strip_frames(30) == [0, 3, 6, 10, 13, 16, 19, 23, 26, 29]
    assert strip_frames(4) == [0, 1, 2, 3]
    fig = strip_figure(ramp(30), list(range(30)), "a walk")
    assert isinstance(fig, MplFigure)
    assert len(fig.axes) == 10
    assert fig.axes[-1].get_xlabel() == "step 29\nreads 29"
    with pytest.raises(VaelabError, match="readings"):
        strip_figure(ramp(5), [1, 2], "too few")


def synthetic_study(n: int = 200) -> StudyData:
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(n, 784, generator=gen)
    y = torch.arange(n) % 10
    return StudyData(x_test=x[: n // 2], y_test=y[: n // 2], x_train=x, y_train=y)


def test_run_end_to_end(tmp_path: Path) -> None:
    data = synthetic_study()
    cfg = ExperimentConfig(walks=((1, 0), (3, 7)), walk_steps=12)
    models = {("vae", 4): untrained(latent=4), ("ae", 4): untrained("ae", latent=4)}
    judge = DigitClassifier(hidden=16, epochs=1).fit(data.x_train, data.y_train)
    result = interpolation.run(models, data, cfg, tmp_path, judge)

    assert result.name == "interpolation"
    numbers = result.numbers
    assert numbers["classifier"]["test_accuracy"] == judge.score(data.x_test, data.y_test)
    assert numbers["endpoints"] == {
        "1to0": {"start_index": 1, "end_index": 0},
        "3to7": {"start_index": 3, "end_index": 7},
    }
    assert set(numbers["walks"]) == {"1to0", "3to7"}
    for walk in numbers["walks"].values():
        assert set(walk) == {"4"}  # z=16 and z=64 have no model: skipped
        one = walk["4"]
        assert len(one["readings"]) == 12
        assert one["path"] == digit_path(one["readings"])
        assert one["changes"] == len(one["path"]) - 1
        assert (one["start_reads_as"], one["end_reads_as"]) == (
            one["readings"][0],
            one["readings"][-1],
        )
    assert [f.path for f in result.figures] == [
        "figures/walk_train3to1_z4.gif",  # the notebook's own walks first
        "figures/walk_train3to1_z4.png",
        "figures/walk_train7to15_z4.gif",
        "figures/walk_train7to15_z4.png",
        "figures/walk_1to0_z4.gif",
        "figures/walk_1to0_z4.png",
        "figures/walk_3to7_z4.gif",
        "figures/walk_3to7_z4.png",
    ]
    assert all(f.caption and (tmp_path / f.path).is_file() for f in result.figures)
    with Image.open(tmp_path / "figures/walk_1to0_z4.gif") as gif:
        assert gif.is_animated and gif.size == (112, 112)
    # the article's walks: training images 3 -> 1 and 7 -> 15, read frame by frame
    article = numbers["article_walks"]
    assert list(article) == ["3to1", "7to15"]
    assert article["3to1"]["images"] == [3, 1] and article["3to1"]["digits"] == [3, 1]
    assert article["7to15"]["digits"] == [7, 5]
    frames = latent_walk(models[("vae", 4)], data.x_train[7], data.x_train[15], 12)
    assert article["7to15"]["walks"]["4"]["readings"] == judge.predict(frames).tolist()


def test_numbers_for_the_claims_alone_draw_nothing_and_skip_the_articles_walks(tmp_path):
    data = synthetic_study()
    cfg = ExperimentConfig(walks=((1, 0),), walk_steps=5, walk_pairs=4)
    models = {("vae", 4): untrained(latent=4)}
    judge = DigitClassifier(hidden=16, epochs=1).fit(data.x_train, data.y_train)
    full = interpolation.run(models, data, cfg, tmp_path, judge)
    bare = interpolation.run(models, data, cfg, None, judge)
    assert bare.figures == [] and "article_walks" not in bare.numbers
    assert bare.numbers == {k: v for k, v in full.numbers.items() if k != "article_walks"}


def test_run_reports_a_missing_digit(tmp_path: Path) -> None:
    data = synthetic_study()
    cfg = ExperimentConfig(walks=((1, 0),), walk_steps=3)
    no_ones = StudyData(
        data.x_test[data.y_test != 1], data.y_test[data.y_test != 1], data.x_train, data.y_train
    )
    judge = DigitClassifier(hidden=4, epochs=1).fit(data.x_train, data.y_train)
    with pytest.raises(VaelabError, match="no 1"):
        interpolation.run({("vae", 4): untrained()}, no_ones, cfg, tmp_path, judge)
