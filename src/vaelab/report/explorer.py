"""explorer.html: one offline page that decodes the study's latent spaces live in the browser.

The page (templates/explorer.html, .css and four .js) gets one JSON blob: the decoders' and
the digit classifier's weights, and for a seeded sample of a few hundred test images (always
holding the report's own examples) their numbers, pixels, codes and 2-D map positions, packed
into one deflated byte buffer. Floats keep their sign, exponent and a chosen
number of mantissa bits, stored as three byte planes (sign/exponent byte first), which deflate
squeezes well and the page turns back into float32 exactly. 13 mantissa bits (relative error
below 6e-5) keep the decoded pixels within 3e-5 of PyTorch's and the quick study's page under
5 MB (about 4.6 MB); the classifier only has to agree on which digit it reads and keeps 8.
An M2 also carries its own classifier q(y|x), at the decoders' precision, so the page can show
what M2 itself reads in the point it decodes.
"""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vaelab.core import fileio
from vaelab.core.folders import REPORT_FILE
from vaelab.experiments.common import Models, StudyData, encode_means
from vaelab.models import kinds, spec
from vaelab.models.classifier import DigitClassifier
from vaelab.models.export import decoder_chain
from vaelab.models.networks import AutoEncoder

# the page's scripts (templates/), in the order they run: networks, map, walk, page
SCRIPTS = ("explorer-nets.js", "explorer-map.js", "explorer-walk.js", "explorer.js")
MAX_POINTS = 300  # test images drawn on the map and available as walk ends
DECODER_MANTISSA = 13  # of float32's 23 bits; see the module docstring
CLASSIFIER_MANTISSA = 8
CODE_MANTISSA = 15  # codes and projections: the most three byte planes can hold
FLOAT_PLANES = 3  # bytes kept per float: sign + exponent + up to 15 mantissa bits


def quantize(values: np.ndarray, mantissa: int) -> np.ndarray:
    """float32 `values` rounded to `mantissa` mantissa bits (what the page will read back)."""
    if not 0 <= mantissa <= 8 * FLOAT_PLANES - 9:
        raise ValueError(f"mantissa bits must be 0..{8 * FLOAT_PLANES - 9}, got {mantissa}")
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32).astype(np.uint64)
    drop = 23 - mantissa
    rounded = ((bits + (1 << (drop - 1))) >> drop) << drop  # round half up on the magnitude
    return rounded.astype(np.uint32).view(np.float32).reshape(np.shape(values))


@dataclass
class Packer:
    """Tensors appended to one byte buffer, each described by name, shape, offset and format."""

    chunks: list[bytes] = field(default_factory=list)
    index: dict[str, dict[str, Any]] = field(default_factory=dict)
    size: int = 0

    def _add(self, name: str, shape: tuple[int, ...], fmt: str, data: bytes) -> str:
        self.index[name] = {"shape": list(shape), "format": fmt, "offset": self.size}
        self.chunks.append(data)
        self.size += len(data)
        return name

    def floats(self, name: str, values: Any, mantissa: int) -> str:
        """Float32 as FLOAT_PLANES byte planes, most significant byte's plane first."""
        array = quantize(np.asarray(values, dtype=np.float32), mantissa)
        planes = array.reshape(-1).astype("<f4").view(np.uint8).reshape(-1, 4)[:, ::-1]
        return self._add(name, array.shape, "f32planes", planes[:, :FLOAT_PLANES].T.tobytes())

    def bytes_u8(self, name: str, values: np.ndarray) -> str:
        array = np.ascontiguousarray(values, dtype=np.uint8)
        return self._add(name, array.shape, "u8", array.tobytes())

    def blob(self) -> str:
        """The buffer, deflated (zlib format, which the page's DecompressionStream reads)."""
        return base64.b64encode(zlib.compress(b"".join(self.chunks), 9)).decode("ascii")


def pca_2d(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """Mean (Z,), the top two principal axes (2, Z) and their shares of the variance.

    At Z = 2 the map is the code itself: mean 0 and the identity, so nothing is projected.
    """
    z = codes.shape[1]
    if z == 2:
        return np.zeros(2), np.eye(2), [1.0, 1.0]
    mean = codes.mean(axis=0)
    _, s, vt = np.linalg.svd(codes - mean, full_matrices=False)
    share = (s**2 / max(float((s**2).sum()), 1e-30)).tolist()
    # the sign of a singular vector is arbitrary; fix it so the same codes give the same map
    signs = np.where(vt[:2].sum(axis=1) < 0, -1.0, 1.0)[:, None]
    return mean, vt[:2] * signs, share[:2]


def _model_entry(
    pack: Packer, kind: str, z: int, model: AutoEncoder, data: StudyData, rows: np.ndarray
) -> dict[str, Any]:
    name = f"{kind}-z{z}"
    x = data.x_test[rows]
    labels = data.y_test[rows] if model.uses_labels else None
    codes = encode_means(model, x, labels).astype(np.float32)  # (n, Z)
    stored = quantize(codes, CODE_MANTISSA).astype(np.float64)
    mean, axes, share = pca_2d(stored)
    mean, axes = quantize(mean, CODE_MANTISSA), quantize(axes, CODE_MANTISSA)
    tensors = {
        key: pack.floats(f"{name}/{key}", value, DECODER_MANTISSA)
        for key, value in kinds.record(kind).export(model).items()
    }
    chain = [
        {
            "weight": tensors[f"{layer.name}.weight"],
            "bias": tensors.get(f"{layer.name}.bias"),
            "activation": layer.activation,
        }
        for layer in decoder_chain(model)
    ]
    return {
        "id": name,
        "kind": kind,
        "latent": z,
        "uses_labels": model.uses_labels,
        "decoder": {"layers": chain, "label_logits": tensors.get("label_logits")},
        "q_y": _classifier_layers(pack, name, model),
        "codes": pack.floats(f"{name}/codes", codes, CODE_MANTISSA),
        # each code's coordinates on the two axes, so that the map's (0, 0) is the origin's
        # projection; the page maps (u, v) back to mean + (u - mean.a1) a1 + (v - mean.a2) a2
        "map": pack.floats(f"{name}/map", stored @ axes.T, CODE_MANTISSA),
        "pca": {
            "mean": pack.floats(f"{name}/pca_mean", mean, CODE_MANTISSA),
            "axes": pack.floats(f"{name}/pca_axes", axes, CODE_MANTISSA),
            "variance_share": share,
        },
    }


@torch.no_grad()
def _classifier_layers(pack: Packer, name: str, model: AutoEncoder) -> list[dict[str, Any]] | None:
    """M2's q(y|x) as the page's chain of dense layers (None for a kind without one)."""
    if not model.has_classifier:
        return None
    state = model.state_dict()
    return [
        {
            "weight": pack.floats(
                f"{name}/{layer.name}.weight", state[f"{layer.name}.weight"], DECODER_MANTISSA
            ),
            "bias": pack.floats(
                f"{name}/{layer.name}.bias", state[f"{layer.name}.bias"], DECODER_MANTISSA
            ),
            "activation": layer.activation,
        }
        for layer in spec.layers(model.cfg, model.traits)
        if layer.path == "classifier"
    ]


def sample_rows(total: int, n: int, keep: Sequence[int] = (), seed: int = 0) -> np.ndarray:
    """Which of the study's `total` test images the page carries, sorted: every one of `keep`
    (the report's example images), then a seeded draw of the others, `n` in all (or more, when
    `keep` alone holds more)."""
    kept = np.unique(np.asarray([i for i in keep if 0 <= i < total], dtype=np.int64))
    order = np.random.default_rng(seed).permutation(total)
    others = order[~np.isin(order, kept)][: max(0, n - len(kept))]
    return np.sort(np.concatenate([kept, others]))


def explorer_data(
    models: Models,
    data: StudyData,
    judge: DigitClassifier,
    *,
    title: str,
    walk_steps: int,
    seed: int | None = None,
    seeds: Sequence[int] = (),
    walks: Sequence[tuple[int, int]] = (),
    examples: Sequence[int] = (),
    max_points: int = MAX_POINTS,
) -> dict[str, Any]:
    """The JSON the page reads: every model's decoder and codes, the judge, a sample of the
    test images with their numbers (their place among the study's test images, as results.json
    and the report count them, and their index in MNIST's test set where `data` knows it), the
    run seed whose models these are (of the study's `seeds`), and the report's walks (start,
    end) and example images, which the sample always holds (the page opens on the first walk).
    """
    keep = [*examples, *(i for walk in walks for i in walk)]
    rows = sample_rows(len(data.x_test), max_points, keep)
    pack = Packer()
    shown = {key: m for key, m in models.items() if kinds.record(key[0]).export is not None}
    left_out = sorted({k for k, _ in models} - {k for k, _ in shown}, key=kinds.names().index)
    order = sorted(shown, key=lambda key: (key[1], kinds.names().index(key[0])))
    entries = [_model_entry(pack, k, z, models[(k, z)], data, rows) for k, z in order]
    judge_layers = judge.linear_layers()
    layers = [
        {
            "weight": pack.floats(f"judge/w{i}", w, CLASSIFIER_MANTISSA),
            "bias": pack.floats(f"judge/b{i}", b, CODE_MANTISSA),
            "activation": "relu" if i < len(judge_layers) - 1 else "none",
        }
        for i, (w, b) in enumerate(judge_layers)
    ]
    images = np.rint(data.x_test[rows].numpy() * 255).astype(np.uint8)  # (n, 784)
    mnist_index = None if data.test_index is None else np.asarray(data.test_index)[rows]
    found = {
        "title": title,
        "seed": seed,
        "seeds": [int(s) for s in seeds],
        "report": REPORT_FILE,
        "walk_steps": walk_steps,
        "walks": [[int(a), int(b)] for a, b in walks],
        "test_images": len(data.x_test),
        "index": rows.tolist(),
        "mnist_index": None if mnist_index is None else mnist_index.tolist(),
        "labels": data.y_test[rows].tolist(),
        "images": pack.bytes_u8("test_images", images),
        "models": entries,
        "classifier": layers,
        "tensors": pack.index,
        "blob": pack.blob(),
    }
    if left_out:  # kinds whose decoder the page cannot evaluate (not dense): said on the page
        found["left_out"] = left_out
    return found


def _template(name: str) -> str:
    return resources.files("vaelab.report").joinpath("templates", name).read_text(encoding="utf-8")


def render_explorer(payload: dict[str, Any]) -> str:
    """The page: the template with its style, script and data put inline."""
    # "<" escaped so no string in the data can close the <script> element holding it
    blob = json.dumps(payload, allow_nan=False, separators=(",", ":")).replace("<", "\\u003c")
    html = _template("explorer.html")
    for marker, text in (
        ("/* vaelab:style */", _template("explorer.css")),
        ("/* vaelab:script */", "\n".join(_template(name) for name in SCRIPTS)),
        ("/* vaelab:data */", blob),
    ):
        if html.count(marker) != 1:
            raise RuntimeError(f"templates/explorer.html must hold {marker} once")
        html = html.replace(marker, text)
    return html


def write_explorer(
    models: Models,
    data: StudyData,
    judge: DigitClassifier,
    path: Path,
    *,
    title: str,
    walk_steps: int,
    seed: int | None = None,
    seeds: Sequence[int] = (),
    walks: Sequence[tuple[int, int]] = (),
    examples: Sequence[int] = (),
) -> Path:
    """Write explorer.html to `path` (atomically); returns the path. See `explorer_data`."""
    payload = explorer_data(
        models,
        data,
        judge,
        title=title,
        walk_steps=walk_steps,
        seed=seed,
        seeds=seeds,
        walks=walks,
        examples=examples,
    )
    fileio.write_text(path, render_explorer(payload))
    return Path(path)
