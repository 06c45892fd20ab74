"""Seeds through the study: per-seed runs and numbers, summaries, the claims over training."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from helpers_reliability import MICRO_STUDY, write_npz
from vaelab.core.config import StudyConfig, load_toml
from vaelab.core.errors import VaelabError
from vaelab.evaluation.evidence import across_seeds, central
from vaelab.report.numbers import summary
from vaelab.study.pipeline import run_study
from vaelab.study.results import still_improving


def _toml(root: Path, seeds: list[int], epochs: int = 2, steps: int | None = None) -> Path:
    data = write_npz(root / "m.npz") if not (root / "m.npz").exists() else root / "m.npz"
    text = MICRO_STUDY.replace("[data]\n", f'[data]\npath = "{data}"\n')
    text = text.replace("latents = [2, 4]\n", f"latents = [2, 4]\nseeds = {seeds}\n", 1)
    length = f"epochs = {epochs}" if steps is None else f"steps = {steps}"
    text = text.replace("epochs = 2\n", f"{length}\ncheckpoint_every = 20\n", 1)
    text = text.replace("checkpoint_every = 1\n", "")
    path = root / f"study-{len(seeds)}-{epochs}-{steps}.toml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def two_seeds(tmp_path_factory) -> tuple[Path, Path, dict]:
    """A micro study with seeds [0, 1] trained for 1002 steps of 6 an epoch (167 epochs):
    milestones at steps 250, 500, 1000 and 1002."""
    root = tmp_path_factory.mktemp("seeds")
    out = root / "study"
    log = io.StringIO()
    run_study(str(_toml(root, [0, 1], steps=1002)), out, console=Console(file=log, width=200))
    return root, out, json.loads((out / "results.json").read_text())


def test_every_seed_trains_its_own_models_on_the_same_test_images(two_seeds):
    _, out, results = two_seeds
    assert results["seeds"] == [0, 1]
    assert set(results["training"]) == {
        f"{kind}-z{z}-seed{s}" for kind in ("ae", "vae") for z in (2, 4) for s in (0, 1)
    }
    configs = [json.loads((f / "config.json").read_text()) for f in (out / "models").iterdir()]
    assert {c["train"]["seed"] for c in configs} == {0, 1}
    per_seed = results["per_seed"]
    assert set(per_seed) == {"0", "1"}
    nll = [per_seed[s]["reconstruction"]["table"]["vae"]["2"]["nll"] for s in ("0", "1")]
    assert nll[0] != nll[1]  # other weights, batch order and noise
    walk = [per_seed[s]["interpolation"]["endpoints"] for s in ("0", "1")]
    assert walk[0] == walk[1]  # the same test images in every seed: paired comparisons
    summary = results["experiments"]["reconstruction"]["table"]["vae"]["2"]["nll"]
    assert summary["n"] == 2 and summary["mean"] == pytest.approx(sum(nll) / 2)
    assert results["experiments"]["clustering"]["runs"] == 2  # a setting stays a plain number


def test_claims_are_judged_per_seed_and_over_training(two_seeds):
    _, out, results = two_seeds
    for claim in results["claims"]:
        assert claim["seeds"] == [0, 1] and not claim["provisional"]
        for comparison in claim["comparisons"]:
            assert len(comparison["per_seed"]) == 2
            low, high = comparison["interval"]
            assert low <= comparison["effect"] <= high
    over = results["claims_over_training"]
    assert over["steps"] == [250, 500, 1000, 1002]
    assert over["labels"] == ["250 steps", "500 steps", "1000 steps", "1002 steps (167 epochs)"]
    assert over["article_column"] == 2 and over["steps_per_epoch"] == 6
    assert set(over["verdicts"]) == {str(n) for n in range(1, 9)}
    assert all(len(v) == 4 for v in over["verdicts"].values())
    final = {str(c["number"]): c["verdict"] for c in results["claims"]}
    assert {n: v[-1] for n, v in over["verdicts"].items()} == final
    assert over["judged"] == 3 and over["descriptive"] == [0, 1, 2]
    assert "same 2 seeds" in over["caption"] and "Only the last column" in over["caption"]
    last = {c["name"]: c["effect"] for c in results["claims"][3]["comparisons"]}
    assert {n: e["effect"] for n, e in over["effects"]["4"][-1].items()} == last
    for run in (out / "models").iterdir():
        steps = sorted(int(p.stem[5:]) for p in (run / "milestones").glob("*.json"))
        assert steps == [250, 500, 1000, 1002]
    regimes = results["regimes"]  # trained past the article's point: its own table
    assert [c["label"] for c in regimes["columns"]] == ["1000 steps", "at convergence"]
    for row in regimes["rows"]:
        verdicts = over["verdicts"][str(row["claim"])]
        assert [cell["verdict"] for cell in row["cells"]] == [verdicts[2], verdicts[3]]
    html = (out / "report.html").read_text()
    assert "The verdicts over training" in html and "1002 steps (167 epochs)" in html
    assert "1000 steps (the article&#39;s)" in html or "1000 steps (the article's)" in html
    assert 'alt="each comparison over training"' in html
    assert "Provisional" not in html


def test_the_box_plots_pool_every_seed(two_seeds):
    _, out, results = two_seeds
    figures = results["figures"]["clustering"]
    assert [f["path"] for f in figures] == [f"figures/clustering_z{z}.png" for z in (2, 4)]
    assert all("2 seeds" in f["title"] and "4 runs" in f["title"] for f in figures)
    assert all((out / f["path"]).is_file() for f in figures)


def test_a_rerun_reuses_everything_and_a_new_seed_trains_only_its_models(two_seeds):
    root, out, first = two_seeds
    log = io.StringIO()
    run_study(str(_toml(root, [0, 1], steps=1002)), out, console=Console(file=log, width=200))
    again = json.loads((out / "results.json").read_text())
    assert "computing" not in log.getvalue()  # milestone claims come from their cache
    milestones = "claims at milestone steps"
    assert first["timings"]["steps"][milestones]["what"].startswith("6 of 6 (step, seed)")
    assert again["timings"]["steps"][milestones]["what"].startswith("0 of 6 (step, seed)")
    assert again["claims_over_training"] == first["claims_over_training"]
    assert all(t["reused"] for t in again["training"].values())
    steps = again["timings"]["steps"]
    assert all(v["what"].startswith("reused") for k, v in steps.items() if "experiment" in k), [
        (k, v["what"]) for k, v in steps.items() if "experiment" in k
    ]

    run_study(str(_toml(root, [0, 1, 2], steps=1002)), out, console=Console(file=io.StringIO()))
    three = json.loads((out / "results.json").read_text())
    trained = {k for k, t in three["training"].items() if not t["reused"]}
    assert trained == {f"{kind}-z{z}-seed2" for kind in ("ae", "vae") for z in (2, 4)}
    assert three["per_seed"]["0"] == first["per_seed"]["0"]  # the old seeds' numbers stand


def test_one_seed_is_provisional_and_says_so(tmp_path):
    out = tmp_path / "study"
    run_study(str(_toml(tmp_path, [3])), out, console=Console(file=io.StringIO()))
    results = json.loads((out / "results.json").read_text())
    assert results["seeds"] == [3] and results["claims"][0]["provisional"]
    assert "Provisional: one seed" in (out / "report.html").read_text()


@pytest.mark.parametrize(
    "seeds, message",
    [("[]", "at least one seed"), ("[1, 1]", "must not repeat"), ('["a"]', "must be int")],
)
def test_bad_seeds_fail_before_any_work(tmp_path, seeds, message):
    path = tmp_path / "s.toml"
    path.write_text(f"seeds = {seeds}\n")
    with pytest.raises(VaelabError, match=message):
        load_toml(path, StudyConfig)


def test_a_train_seed_in_a_study_points_to_seeds(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text("[train]\nseed = 4\n")
    with pytest.raises(VaelabError, match="seeds = "):
        load_toml(path, StudyConfig)


def test_still_improving_compares_the_last_fifth_of_the_steps():
    rows = [{"step": s, "test_loss": loss} for s, loss in ((800, 100.0), (900, 99.5), (1000, 98.0))]
    assert still_improving(rows, 1000) is True  # 100 -> 98 over steps 800..1000: 2% > 1%
    rows[-1]["test_loss"] = 99.2
    assert still_improving(rows, 1000) is False  # 0.8%
    assert still_improving(rows[-1:], 1000) is None  # one evaluation: nothing to compare
    assert still_improving([{"step": 1, "test_loss": 5.0}, {"step": 2, "test_loss": 1.0}], 2)
    # the article's run: evaluated at the end of epoch 1 (step 600) and at step 1000
    article = [{"step": 600, "test_loss": 0.0010}, {"step": 1000, "test_loss": 0.0009}]
    assert still_improving(article, 1000) is True


def test_across_seeds_keeps_settings_and_summarises_what_differs():
    tree = across_seeds(
        [{"runs": 50, "nll": 1.0, "path": [1, 0]}, {"runs": 50, "nll": 3.0, "path": [1, 8, 0]}]
    )
    assert tree["runs"] == 50 and tree["path"] == [1, 0]
    assert tree["nll"]["mean"] == 2.0 and tree["nll"]["n"] == 2
    assert tree["nll"]["sd"] == pytest.approx(2**0.5)
    assert central(tree["nll"]) == 2.0 and central(7) == 7
    assert summary(tree["nll"]) == "2.00 ± 1.41"
    missing = across_seeds([{"nll": 1.0}, {}])
    assert missing["nll"]["n"] == 1 and summary(missing["nll"]) == "1.00"
