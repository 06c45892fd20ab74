"""TensorBoard views of vaelab's own files: scalars from metrics logs, the embedding projector.

Both are derived data, rebuilt from the run folders whenever asked: the metrics log and the
saved model stay the record. TensorBoard is an optional extra (`pip install 'vaelab[tensorboard]'`).
"""

from __future__ import annotations

import io
import math
import shutil
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from vaelab.core import fileio
from vaelab.core.config import RunConfig
from vaelab.core.errors import VaelabError
from vaelab.core.folders import RunFolder, StudyFolder, read_metrics
from vaelab.data.mnist import load_mnist
from vaelab.data.splits import test_subset
from vaelab.models import kinds
from vaelab.training import checkpoint

TB_HINT = "TensorBoard files need TensorBoard: pip install 'vaelab[tensorboard]'"
TERMS = ("loss", "reconstruction", "kl")
THUMB = 28  # sprite thumbnails: the images' own size


def tensorboard_name(cfg: RunConfig) -> str:
    """<kind>-z<latent>-seed<seed>, and the point -C<C>-k<k> for a VAE or CVAE (-mse for an
    AE on the mean squared error): a readable name in TensorBoard's run list (the run
    folder's own name is a hash)."""
    t, m = cfg.train, cfg.model
    if kinds.record(m.kind).role == "ae":  # the settings it reads: its loss
        point = "" if t.ae_loss == "bernoulli" else f"-{t.ae_loss}"
    else:
        point = f"-C{t.kl_weight:g}-k{t.n_samples}"
    return f"{m.kind}-z{m.latent}-seed{t.seed}{point}"


def write_scalars(logdir: Path, run_dirs: list[Path]) -> list[Path]:
    """One TensorBoard run per run folder under `logdir`: train and test terms per epoch,
    at the step each epoch ended (a log from before steps: at its epoch)."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise VaelabError(TB_HINT) from None
    written = []
    for run_dir in run_dirs:
        rows = read_metrics(run_dir)
        if not rows:
            continue
        cfg = checkpoint.read_run_config(run_dir)
        target = Path(logdir) / tensorboard_name(cfg)
        shutil.rmtree(target, ignore_errors=True)  # rebuilt from the log, never appended twice
        writer = SummaryWriter(log_dir=str(target))
        for row in rows:
            at = row.get("step", row["epoch"])
            for term in TERMS:
                for split, key in (("train", term), ("test", f"test_{term}")):
                    value = row.get(key)
                    if isinstance(value, int | float) and math.isfinite(value):
                        writer.add_scalar(f"{term}/{split}", value, at)
            if isinstance(row.get("seconds"), int | float):
                writer.add_scalar("seconds_per_epoch", row["seconds"], at)
        writer.close()
        written.append(target)
    return written


def export_projector(source: Path, out: Path, data_path: str | None = None) -> list[str]:
    """Test codes, digit labels and a sprite for TensorBoard's projector; returns the names.

    `source` is a run folder (one model) or a study folder (every finished model that saw
    the same test images as the first one).
    """
    run_dirs = _finished_runs(Path(source))
    first = checkpoint.read_run_config(run_dirs[0])
    d = first.data
    mnist = load_mnist(data_path if data_path is not None else d.path)
    index = test_subset(mnist.y_test, d.test_size, d.seed)
    x = torch.from_numpy(mnist.x_test[index].astype(np.float32) / 255.0)  # (M, 784)
    labels = mnist.y_test[index]
    out = Path(out)
    fileio.write_text(out / "metadata.tsv", "".join(f"{int(v)}\n" for v in labels))
    fileio.write_bytes(out / "sprite.png", _sprite(mnist.x_test[index]))
    names, blocks = [], []
    for run_dir in run_dirs:
        cfg = checkpoint.read_run_config(run_dir)
        if (cfg.data.test_size, cfg.data.seed) != (d.test_size, d.seed):
            continue
        model, _ = checkpoint.load_model(run_dir, "cpu")
        with torch.no_grad():
            codes = model.embed(x).numpy()  # (M, Z): the mean code, no label
        name = tensorboard_name(cfg)
        tensors = "tensors.tsv" if len(run_dirs) == 1 else f"{name}/tensors.tsv"
        fileio.write_text(
            out / tensors, "".join("\t".join(f"{v:.7g}" for v in r) + "\n" for r in codes)
        )
        names.append(name)
        blocks.append(_embedding_block(name, tensors))
    fileio.write_text(out / "projector_config.pbtxt", "".join(blocks))
    return names


def _finished_runs(source: Path) -> list[Path]:
    if RunFolder(source).has_model():
        return [source]
    runs = [r.path for r in StudyFolder(source).finished_runs()]
    if not runs:
        raise VaelabError(f"{source} holds no finished model (a run or a study folder)")
    return runs


def _sprite(images: np.ndarray) -> bytes:
    """All images as 28 x 28 thumbnails in a square grid, row-major, as the projector wants."""
    n = len(images)
    side = math.ceil(math.sqrt(n))
    grid = np.zeros((side * THUMB, side * THUMB), dtype=np.uint8)
    for i, image in enumerate(images):
        r, c = divmod(i, side)
        grid[r * THUMB : (r + 1) * THUMB, c * THUMB : (c + 1) * THUMB] = image.reshape(28, 28)
    buffer = io.BytesIO()
    Image.fromarray(grid).save(buffer, format="PNG")  # uint8 (H, W): 8-bit grey
    return buffer.getvalue()


def _embedding_block(name: str, tensors: str) -> str:
    return (
        "embeddings {\n"
        f'  tensor_name: "{name}"\n'
        f'  tensor_path: "{tensors}"\n'
        '  metadata_path: "metadata.tsv"\n'
        "  sprite {\n"
        '    image_path: "sprite.png"\n'
        f"    single_image_dim: {THUMB}\n"
        f"    single_image_dim: {THUMB}\n"
        "  }\n"
        "}\n"
    )
