"""The digit judge: learns a separable problem, is deterministic, and round-trips on disk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from vaelab.core.errors import VaelabError
from vaelab.models.classifier import PARAMS_FILE, WEIGHTS_FILE, DigitClassifier

FAST = {"hidden": 32, "epochs": 10, "batch_size": 50}  # small enough for a unit test


def prototype_digits(n: int = 500, noise: float = 0.05, seed: int = 0) -> tuple:
    """`n` noisy copies of 10 random prototype images, labels cycling 0-9: separable by design."""
    rng = np.random.default_rng(seed)
    prototypes = rng.random((10, 784), dtype=np.float32)
    labels = np.arange(n, dtype=np.int64) % 10
    images = prototypes[labels] + rng.normal(0, noise, (n, 784)).astype(np.float32)
    return np.clip(images, 0, 1), labels


@pytest.fixture(scope="module")
def problem() -> tuple:
    return prototype_digits()


@pytest.fixture(scope="module")
def fitted(problem: tuple) -> DigitClassifier:
    x, y = problem
    return DigitClassifier(**FAST).fit(x, y)


def test_learns_a_separable_problem_perfectly(fitted: DigitClassifier) -> None:
    x_new, y_new = prototype_digits(n=200, seed=0)  # same prototypes, fresh noise
    x_new = np.clip(x_new + np.random.default_rng(1).normal(0, 0.02, x_new.shape), 0, 1)
    assert fitted.score(x_new, y_new) == 1.0
    predictions = fitted.predict(x_new)
    assert predictions.dtype == np.int64 and predictions.shape == (200,)


def test_probabilities_are_a_distribution(fitted: DigitClassifier, problem: tuple) -> None:
    proba = fitted.predict_proba(problem[0][:20])
    assert proba.shape == (20, 10)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(proba.argmax(axis=1), fitted.predict(problem[0][:20]))


def test_tensors_and_arrays_give_the_same_readings(fitted: DigitClassifier, problem: tuple) -> None:
    x = problem[0][:50]
    np.testing.assert_array_equal(fitted.predict(x), fitted.predict(torch.from_numpy(x)))


def test_same_seed_same_judge(fitted: DigitClassifier, problem: tuple) -> None:
    again = DigitClassifier(**FAST).fit(*problem)
    np.testing.assert_array_equal(again.predict_proba(problem[0]), fitted.predict_proba(problem[0]))


def test_different_seed_different_weights(fitted: DigitClassifier, problem: tuple) -> None:
    other = DigitClassifier(**FAST, seed=1).fit(*problem)
    first = fitted.net_[0].weight
    assert not torch.equal(first, other.net_[0].weight)


def test_fit_leaves_the_global_random_state_alone(problem: tuple) -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    DigitClassifier(hidden=8, epochs=1).fit(*problem)
    assert torch.equal(torch.rand(3), expected)


def test_save_load_round_trip(fitted: DigitClassifier, problem: tuple, tmp_path: Path) -> None:
    fitted.save(tmp_path / "judge")
    loaded = DigitClassifier.load(tmp_path / "judge")
    assert loaded.get_params() == fitted.get_params()
    np.testing.assert_array_equal(
        loaded.predict_proba(problem[0]), fitted.predict_proba(problem[0])
    )
    assert sorted(p.name for p in (tmp_path / "judge").iterdir()) == sorted(
        [PARAMS_FILE, WEIGHTS_FILE]
    )


def test_load_rejects_altered_weights(fitted: DigitClassifier, tmp_path: Path) -> None:
    fitted.save(tmp_path)
    weights = tmp_path / WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[:-1] + b"\x00")
    with pytest.raises(VaelabError, match="corrupt"):
        DigitClassifier.load(tmp_path)


def test_load_of_a_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(VaelabError, match="cannot read"):
        DigitClassifier.load(tmp_path / "nothing")


def test_unfitted_and_bad_input_are_clear_errors(fitted: DigitClassifier) -> None:
    with pytest.raises(VaelabError, match="not trained"):
        DigitClassifier().predict(np.zeros((1, 784), dtype=np.float32))
    with pytest.raises(VaelabError, match="shape"):
        fitted.predict(np.zeros((2, 28, 28), dtype=np.float32))
    with pytest.raises(VaelabError, match="0-9"):
        DigitClassifier(hidden=4, epochs=1).fit(np.zeros((2, 784)), np.array([0, 10]))
