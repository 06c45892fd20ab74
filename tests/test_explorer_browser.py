"""explorer.html in a real browser (Debian's Chromium through Playwright): it runs offline,
and what it decodes and reads equals what PyTorch decodes and the classifier reads."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import make_prototype_mnist, tiny_models
from vaelab.core.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from vaelab.data.splits import to_float
from vaelab.data.tensors import TensorData
from vaelab.experiments.common import StudyData
from vaelab.experiments.interpolation import latent_walk
from vaelab.models.classifier import DigitClassifier
from vaelab.report.explorer import write_explorer
from vaelab.training.run import train

WALK_STEPS = 7
TOLERANCE = 1e-4  # page's decoded probabilities against PyTorch's


def chromium_path() -> str | None:
    """$VAELAB_CHROMIUM (CI sets it: then it must exist), /usr/bin/chromium, or one on PATH."""
    required = os.environ.get("VAELAB_CHROMIUM")
    if required:
        if not Path(required).is_file():
            pytest.fail(f"VAELAB_CHROMIUM={required} does not exist")
        return required
    if Path("/usr/bin/chromium").is_file():
        return "/usr/bin/chromium"
    return shutil.which("chromium")


@pytest.fixture(scope="module")
def chromium():
    executable = chromium_path()
    if executable is None:
        pytest.skip("no Chromium found: install Debian's chromium package to run the browser tests")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def explorer_study(tmp_path_factory):
    """Untrained AE, VAE and CVAE at z = 2 and 4 (the VAE at 4, the CVAE at 2 trained), a
    trained M2 at z = 2, and a judge trained on prototype digits."""
    torch.set_num_threads(1)
    mnist = make_prototype_mnist(n_train=300, n_test=60)
    data = StudyData(
        x_test=torch.from_numpy(to_float(mnist.x_test)),
        y_test=torch.from_numpy(mnist.y_test),
        x_train=torch.from_numpy(to_float(mnist.x_train)),
        y_train=torch.from_numpy(mnist.y_train),
    )
    models = tiny_models((2, 4))
    for kind, z in (("vae", 4), ("cvae", 2), ("m2", 2)):  # trained: walks and labels matter
        cfg = RunConfig(
            model=ModelConfig(kind=kind, latent=z),
            train=TrainConfig(
                epochs=15,
                batch_size=50,
                lr=3e-3,
                checkpoint_every=15,
                eval_every=15,
                n_samples=1,
                classification_weight=4.0,
                labelled_batch=50,
            ),  # fmt: skip
            data=DataConfig(test_size=None, n_labelled=300),
        )
        run_dir = tmp_path_factory.mktemp(f"{kind}{z}")
        models[(kind, z)] = train(cfg, TensorData.from_mnist(mnist, cfg), run_dir).cpu()
    judge = DigitClassifier(hidden=32, epochs=10, seed=0).fit(data.x_train, data.y_train)
    path = tmp_path_factory.mktemp("explorer") / "explorer.html"
    write_explorer(models, data, judge, path, title="browser test", walk_steps=WALK_STEPS)
    return models, data, judge, path


class Page:
    """One loaded explorer page with every console error and request it made."""

    def __init__(self, browser, path: Path) -> None:
        self.page = browser.new_page(viewport={"width": 1280, "height": 800})
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.goto(path.as_uri())
        self.page.wait_for_function("window.vaelabExplorer && window.vaelabExplorer.ready")
        self.page.evaluate("window.vaelabExplorer.ready.then(() => null)")

    def js(self, expression: str, arg=None):
        """Evaluate `expression(explorer, arg)` in the page."""
        return self.page.evaluate(
            f"async (arg) => {{ const x = await window.vaelabExplorer.ready; "
            f"return ({expression})(x, arg); }}",
            arg,
        )

    def canvas_pixels(self, canvas_id: str) -> np.ndarray:
        """The 28 x 28 grey levels drawn on canvas `canvas_id`, read at each cell's centre."""
        values = self.page.evaluate(
            """(id) => {
                const c = document.getElementById(id);
                const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
                const cell = c.width / 28;
                const out = [];
                for (let r = 0; r < 28; r++) for (let q = 0; q < 28; q++) {
                    const x = Math.floor((q + 0.5) * cell), y = Math.floor((r + 0.5) * cell);
                    out.push(d[4 * (y * c.width + x)]);
                }
                return out;
            }""",
            canvas_id,
        )
        return np.array(values, dtype=np.float64)


@pytest.fixture
def explorer(chromium, explorer_study):
    page = Page(chromium, explorer_study[3])
    yield page
    page.page.close()


@torch.no_grad()
def torch_decode(model, z, label: int = -1) -> np.ndarray:
    """The decode of z; M2 given no label decodes with the label its q(y|x) reads in the
    label-free decode of z."""
    z = torch.tensor([z], dtype=torch.float32)
    if model.has_classifier and label < 0:
        label = int(
            model.predict_proba(torch.sigmoid(model.decode(z, torch.tensor([-1])))).argmax()
        )
    y = torch.tensor([label]) if model.uses_labels else None
    return torch.sigmoid(model.decode(z, y))[0].numpy()


def model_of(models, model_id: str):
    kind, z = model_id.split("-z")
    return models[(kind, int(z))]


def test_page_runs_offline_without_errors(explorer, explorer_study, tmp_path):
    assert explorer.js("(x) => x.models.size") == 7  # 6 of the article's models and an M2
    assert "7 models loaded" in explorer.page.inner_text("#status")
    explorer.page.screenshot(path=str(tmp_path / "explorer.png"), full_page=True)
    print(f"screenshot: {tmp_path / 'explorer.png'}")
    assert (tmp_path / "explorer.png").stat().st_size > 10_000
    assert explorer.errors == []
    assert explorer.requests and all(u.startswith(("file:", "data:")) for u in explorer.requests)
    labels = explorer.page.eval_on_selector_all(
        "select, input", "els => els.map(e => e.labels.length && e.labels[0].textContent.trim())"
    )
    assert all(labels), "every control has a label"


def test_pointer_decodes_what_pytorch_decodes(explorer, explorer_study):
    models = explorer_study[0]
    explorer.page.select_option("#model", "vae-z4")
    box = explorer.page.locator("#map").bounding_box()
    seen = []
    for fx, fy in ((0.3, 0.4), (0.7, 0.6)):
        explorer.page.mouse.move(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
        z, decoded = explorer.js("(x) => [x.z, Array.from(x.decoded)]")
        expected = torch_decode(models[("vae", 4)], z)
        assert np.abs(np.array(decoded) - expected).max() < TOLERANCE
        # the 8-bit canvas: each cell within one grey level of PyTorch's pixel
        assert np.abs(explorer.canvas_pixels("decoded") - expected * 255).max() <= 1.0 + 1e-6
        seen.append(explorer.canvas_pixels("decoded"))
    assert np.abs(seen[0] - seen[1]).max() > 5, "moving the pointer changes the decoded image"
    assert explorer.errors == []


def test_every_model_and_label_decodes_fixed_points_as_pytorch(explorer, explorer_study):
    models = explorer_study[0]
    rng = np.random.default_rng(0)
    for model_id in explorer.js("(x) => [...x.models.keys()]"):
        model = model_of(models, model_id)
        labels = range(-1, 10) if model.uses_labels else [-1]
        for z in rng.normal(0, 1.5, size=(3, model.cfg.latent)).tolist():
            for label in labels:
                got = explorer.js(
                    "(x, a) => Array.from(x.decode(a[0], a[1], a[2]))", [model_id, z, label]
                )
                assert np.abs(np.array(got) - torch_decode(model, z, label)).max() < TOLERANCE


def test_cvae_label_changes_the_digit_not_the_point(explorer, explorer_study):
    model = explorer_study[0][("cvae", 2)]
    explorer.page.select_option("#model", "cvae-z2")
    explorer.page.focus("#map")
    explorer.page.keyboard.press("ArrowRight")  # the keyboard moves the marker
    images = {}
    for label in ("3", "8", "-1"):
        explorer.page.select_option("#label", label)
        z, decoded = explorer.js("(x) => [x.z, Array.from(x.decoded)]")
        images[label] = (z, explorer.canvas_pixels("decoded"))
        assert np.abs(np.array(decoded) - torch_decode(model, z, int(label))).max() < TOLERANCE
    assert images["3"][0] == images["8"][0] == images["-1"][0], "the same z is re-decoded"
    assert np.abs(images["3"][1] - images["8"][1]).max() > 5
    assert explorer.page.is_disabled("#label") is False
    explorer.page.select_option("#model", "vae-z2")
    assert explorer.page.is_disabled("#label")


def test_arrow_keys_move_the_marker(explorer):
    explorer.page.focus("#map")
    before = explorer.js("(x) => x.marker")
    explorer.page.keyboard.press("ArrowRight")
    explorer.page.keyboard.press("ArrowUp")
    after, extent = explorer.js("(x) => [x.marker, x.view.extent]")
    assert after[0] - before[0] == pytest.approx(0.01 * extent)
    assert after[1] - before[1] == pytest.approx(0.01 * extent)


def test_walk_readings_match_pytorch(explorer, explorer_study):
    models, data, judge, _ = explorer_study
    model = models[("vae", 4)]
    explorer.page.select_option("#model", "vae-z4")
    start = int((data.y_test == 1).nonzero()[0])
    end = int((data.y_test == 0).nonzero()[0])
    explorer.page.fill("#walk-start", str(start))
    explorer.page.dispatch_event("#walk-start", "change")
    explorer.page.fill("#walk-end", str(end))
    explorer.page.dispatch_event("#walk-end", "change")
    frames = latent_walk(model, data.x_test[start], data.x_test[end], WALK_STEPS)
    readings = judge.predict(frames).tolist()
    assert explorer.js("(x) => x.walk.readings") == readings
    shown = explorer.page.eval_on_selector_all(
        "#walk-readings span", "s => s.map(e => e.textContent)"
    )
    assert shown == [str(r) for r in readings]
    assert len(set(readings)) > 1, "a walk between two digits passes more than one reading"
    slider = explorer.page.locator("#walk-frame-slider")
    slider.focus()
    explorer.page.keyboard.press("Home")
    for frame in range(WALK_STEPS):  # scrub the walk frame by frame
        decoded = np.array(explorer.js("(x) => Array.from(x.walk.decoded)"))
        assert np.abs(decoded - frames[frame].numpy()).max() < TOLERANCE
        assert f"reads {readings[frame]}" in explorer.page.inner_text("#walk-reading")
        explorer.page.keyboard.press("ArrowRight")
    assert explorer.errors == []


def test_clicking_two_dots_picks_the_walk(explorer):
    explorer.page.select_option("#model", "ae-z2")
    box = explorer.page.locator("#map").bounding_box()
    targets = []
    for index in (5, 9):
        x, y = explorer.js(
            "(x, i) => x.view.toCanvas(x.model.points[2 * i], x.model.points[2 * i + 1])", index
        )
        scale = box["width"] / explorer.js("() => document.getElementById('map').width")
        explorer.page.mouse.click(box["x"] + x * scale, box["y"] + y * scale)
        targets.append(
            explorer.js(
                "(x, i) => x.nearestPoint(...x.model.points.slice(2 * i, 2 * i + 2))", index
            )
        )
    walk = explorer.js("(x) => [x.walk.start, x.walk.end]")
    assert walk == targets


def test_decoding_a_frame_is_fast(explorer, tmp_path):
    explorer.page.select_option("#model", "cvae-z4")
    ms = explorer.js("(x) => x.timeDecode(300)")
    print(f"headless Chromium: {ms:.3f} ms to decode one 28x28 frame (hidden 128)")
    assert ms < 50  # live decoding needs well under a frame of a 60 Hz screen... on a busy CI


def test_m2_reads_the_decoded_point_with_its_own_classifier(explorer, explorer_study):
    model = explorer_study[0][("m2", 2)]
    explorer.page.select_option("#model", "m2-z2")
    explorer.page.focus("#map")
    for press, label in (("ArrowRight", "-1"), ("ArrowUp", "-1"), ("ArrowLeft", "4")):
        explorer.page.keyboard.press(press)
        explorer.page.select_option("#label", label)
        z, decoded = explorer.js("(x) => [x.z, Array.from(x.decoded)]")
        assert np.abs(np.array(decoded) - torch_decode(model, z, int(label))).max() < TOLERANCE
        want = model.predict_proba(torch.tensor([decoded], dtype=torch.float32))[0].numpy()
        got = explorer.js("(x) => classifyWith(x.model.q_y, x.decoded)")
        assert np.abs(np.array(got) - want).max() < 1e-3
        text = explorer.page.text_content("#point-info")
        assert f"its own q(y|x) reads a {int(want.argmax())}" in text
    assert explorer.errors == []
