"""What the explorer's browser tests share: the study they open and one loaded page."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from conftest import make_prototype_mnist, tiny_models
from vaelab.core.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from vaelab.data.splits import to_float
from vaelab.data.tensors import TensorData
from vaelab.experiments.common import StudyData, encode_means
from vaelab.models.classifier import DigitClassifier
from vaelab.report.explorer import explorer_data, render_explorer
from vaelab.training.run import train

WALK_STEPS = 7
N_TEST = 120  # the study's test images
SHOWN = 50  # those the page carries: fewer, so that a number is not a row of the page
SEED, SEEDS = 3, [3, 4]  # the run seed whose models the page holds, of the study's
VIEWPORT = {"width": 1280, "height": 800}


class Study(NamedTuple):
    models: dict
    data: StudyData
    judge: DigitClassifier
    path: Path
    shown: list[int]  # the numbers of the test images the page carries
    walks: list[tuple[int, int]]  # the report's walks, as numbers of test images


def make_study(folder: Path) -> Study:
    """The article's twelve models untrained (AE, VAE and CVAE at z = 2, 4, 16, 64; the VAE
    at 4 and the CVAE at 2 trained), a trained M2 at z = 2, and a judge trained on prototype
    digits; the page carries SHOWN of the N_TEST test images, each with its MNIST index."""
    torch.set_num_threads(1)
    mnist = make_prototype_mnist(n_train=300, n_test=N_TEST)
    data = StudyData(
        x_test=torch.from_numpy(to_float(mnist.x_test)),
        y_test=torch.from_numpy(mnist.y_test),
        x_train=torch.from_numpy(to_float(mnist.x_train)),
        y_train=torch.from_numpy(mnist.y_train),
        test_index=np.arange(N_TEST) * 3 + 1,
    )
    models = tiny_models((2, 4, 16, 64))
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
        run_dir = folder / f"{kind}{z}"
        models[(kind, z)] = train(cfg, TensorData.from_mnist(mnist, cfg), run_dir).cpu()
    judge = DigitClassifier(hidden=32, epochs=10, seed=0).fit(data.x_train, data.y_train)
    ones, zeros = (data.y_test == 1).nonzero()[:, 0], (data.y_test == 0).nonzero()[:, 0]
    walks = [(int(ones[-1]), int(zeros[-1])), (int(ones[0]), int(zeros[0]))]
    payload = explorer_data(
        models,
        data,
        judge,
        title="browser test",
        walk_steps=WALK_STEPS,
        seed=SEED,
        seeds=SEEDS,
        walks=walks,
        max_points=SHOWN,
    )
    path = folder / "explorer.html"
    path.write_text(render_explorer(payload))
    return Study(models, data, judge, path, payload["index"], walks)


class Page:
    """One loaded explorer page with every console error and request it made."""

    def __init__(self, browser, path: Path) -> None:
        self.page = browser.new_page(viewport=VIEWPORT)
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
        return self.canvas_pixels_of(f"#{canvas_id}")

    def canvas_pixels_of(self, selector: str) -> np.ndarray:
        """The same for the canvas that CSS `selector` finds."""
        values = self.page.evaluate(
            """(selector) => {
                const c = document.querySelector(selector);
                const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
                const cell = c.width / 28;
                const out = [];
                for (let r = 0; r < 28; r++) for (let q = 0; q < 28; q++) {
                    const x = Math.floor((q + 0.5) * cell), y = Math.floor((r + 0.5) * cell);
                    out.push(d[4 * (y * c.width + x)]);
                }
                return out;
            }""",
            selector,
        )
        return np.array(values, dtype=np.float64)

    def map_rgb(self) -> np.ndarray:
        """The map canvas's pixels, (height, width, 3)."""
        width, height, data = self.page.evaluate(
            """() => {
                const c = document.getElementById("map");
                const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
                return [c.width, c.height, Array.from(d)];
            }"""
        )
        return np.array(data, dtype=np.uint8).reshape(height, width, 4)[..., :3]

    def on_map(self, u: float, v: float) -> tuple[float, float]:
        """Where map point (u, v) is on the screen, by the page's scale from map to canvas."""
        return self.screen(*self.js("(x, p) => x.view.toCanvas(p[0], p[1])", [u, v]))

    def screen(self, x: float, y: float) -> tuple[float, float]:
        """Where pixel (x, y) of the map's canvas is on the screen."""
        left, top, scale = self.page.evaluate(
            """() => {
                const c = document.getElementById("map");
                const box = c.getBoundingClientRect();
                return [box.left + c.clientLeft, box.top + c.clientTop, c.clientWidth / c.width];
            }"""
        )
        return left + x * scale, top + y * scale


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


def codes_of(study: Study, kind: str, numbers: list[int]) -> np.ndarray:
    """The z = 2 codes of test images `numbers`, by PyTorch (the CVAE given the true label)."""
    model = study.models[(kind, 2)]
    labels = study.data.y_test[numbers] if model.uses_labels else None
    return encode_means(model, study.data.x_test[numbers], labels)


def apart(codes: np.ndarray, pixels_per_unit: float, gap: float = 4.0) -> list[int]:
    """Positions in `codes` (n, 2) whose nearest other code is more than `gap` pixels away on
    the map, most isolated first."""
    d = np.linalg.norm(codes[:, None] - codes[None], axis=-1) * pixels_per_unit
    np.fill_diagonal(d, np.inf)
    nearest = d.min(axis=1)
    return [int(i) for i in np.argsort(-nearest) if nearest[i] > gap]
