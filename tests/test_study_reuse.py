"""A study's reuse follows the data's content; its timings and report text follow this run."""

import json
import shutil

import numpy as np
import pytest

from conftest import make_prototype_mnist
from vaelab.experiments.common import ExperimentResult, Figure
from vaelab.report.page import write_report
from vaelab.study.pipeline import run_study

TOML = """name = "small"
models = ["ae", "vae", "cvae"]
latents = [2, 4]
[model]
hidden = 16
embed = 8
[train]
epochs = 1
checkpoint_every = 1
eval_every = 1
[data]
train_size = 200
test_size = 60
n_labelled = 100
[experiments]
recon_latents = [4]
kmeans_runs = 2
iwae_samples = 4
iwae_images = 20
elbo_samples = 2
walk_steps = 4
classifier_epochs = 1
"""


def save_npz(path, seed):
    m = make_prototype_mnist(seed=seed)
    np.savez(path, x_train=m.x_train, y_train=m.y_train, x_test=m.x_test, y_test=m.y_test)
    return m.sha256


def reused(out):
    results = json.loads((out / "results.json").read_text())
    return results, {k: t["reused"] for k, t in results["training"].items()}


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("reuse")
    (root / "small.toml").write_text(TOML)
    sha = save_npz(root / "a.npz", seed=0)
    (root / "out" / "figures").mkdir(parents=True)
    (root / "out" / "figures" / "from_old_settings.png").write_bytes(b"old")
    run_study(str(root / "small.toml"), root / "out", data_path=root / "a.npz", device="cpu")
    return root, sha


def test_results_record_the_data_and_the_images_of_every_measure(study):
    root, sha = study
    results, _ = reused(root / "out")
    assert results["data"]["sha256"] == sha and str(root / "a.npz") in results["data"]["source"]
    assert results["config"]["data"]["sha256"] == sha
    counts = results["images_per_measure"]["reconstruction"]
    assert counts["nll"] == 60 and counts["iwae"] == counts["kl_on_iwae_images"] == 20
    m = results["experiments"]["reconstruction"]["table"]["vae"]["4"]
    assert m["iwae_images"] == 20 and m["iwae"] >= m["elbo_on_iwae_images"] - 1.0
    assert not (root / "out" / "figures" / "from_old_settings.png").exists()  # stale: removed


def test_same_bytes_elsewhere_are_reused_other_bytes_retrain(study):
    root, sha = study
    out = root / "out"
    shutil.copy(root / "a.npz", root / "b.npz")
    run_study(str(root / "small.toml"), out, data_path=root / "b.npz", device="cpu")
    results, flags = reused(out)
    assert all(flags.values())
    steps = results["timings"]["steps"]
    assert steps["training"]["what"] == "0 trained, 6 reused"
    assert steps["digit classifier"]["what"] == "reused"
    assert all(steps[f"experiment: {n}, seed 0"]["what"].startswith("reused") for n in ("latent",))
    assert results["timings"]["total"] >= sum(s["seconds"] for s in steps.values())
    assert results["timings"]["total"] < 60
    assert save_npz(root / "a.npz", seed=1) != sha  # other bytes under the first name
    run_study(str(root / "small.toml"), out, data_path=root / "a.npz", device="cpu")
    results, flags = reused(out)
    assert not any(flags.values())
    assert results["timings"]["steps"]["digit classifier"]["what"] == "computed"
    assert results["timings"]["steps"]["experiment: latent, seed 0"]["what"] == "computed"


def test_report_text_follows_the_settings(study, tmp_path):
    root, _ = study
    results, _ = reused(root / "out")
    experiments = [
        ExperimentResult(name, results["experiments"][name], [Figure(**f) for f in figures])
        for name, figures in results["figures"].items()
    ]
    for f in (f for e in experiments for f in e.figures):
        (tmp_path / "figures").mkdir(exist_ok=True)
        shutil.copy(root / "out" / f.path, tmp_path / f.path)

    def render(**changes):
        r = json.loads(json.dumps(results))
        for path, value in changes.items():
            node = r
            *parents, last = path.split("__")
            for p in parents:
                node = node[p]
            node[last] = value
        return write_report(r, tmp_path / "report.html").read_text()

    html = render()
    assert "100 of the 200 training images keep their label" in html
    assert "a fixed seeded subset of the 100" in html and "One test “4”" in html
    html = render(data__labelled_images=77, data__train_images=150)
    assert "77 of the 150 training images keep their label" in html
    html = render(
        config__experiments__recon_digits=[7, 1], config__experiments__wrong_labels=[2, 3]
    )
    assert (
        "One test “7” and one test “1” are encoded" in html and "2 for the 7, 3 for the 1" in html
    )
    assert "“4”" not in html
    html = render(data__test_images=100, data__test_images_of=100)
    assert "all 100 test images" in html
    html = render(
        training_length__text="37 steps of 100 images", config__experiments__walk_steps=13
    )
    assert "37 steps of 100 images" in html and "in 13 steps" in html
    assert "follows label" not in html and "read as the wrong label given" in html
    assert "nats/image) on the same 20 test images" in html
