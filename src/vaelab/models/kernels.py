"""Fused C kernels for the elementwise passes of a training step on the CPU, and k-means.

On a CPU the matmuls of a step run near the machine's peak; what keeps a step above its
arithmetic floor is the elementwise work: the Bernoulli loss and its gradient over (k, B, 784)
and tanh or softplus over the hidden layers, each a handful of separate tensor passes.
`csrc/kernels.c` does each in one pass, vectorised by the compiler for this CPU: the fused step
calls them directly, and the autograd step through `losses.bernoulli_nll` and the softplus
activation. `csrc/kmeans.c` runs the clustering experiment's k-means
(`vaelab.experiments.kmeans`) start by start in double precision.

They are compiled on first use with the machine's C compiler (`$CC`, else `cc`) into the cache
(`$VAELAB_CACHE/kernels`, one file per sources, compiler and CPU) and loaded with ctypes.
Their OpenMP calls go to the runtime torch has already loaded, so they share torch's threads;
where loading them brings an OpenMP runtime of its own instead, they are not used.
Without a compiler, or with `VAELAB_KERNELS=0`, the step runs the same arithmetic as torch ops:
equal to within float rounding, which `kernels_status()` names and `vaelab train` prints.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from importlib import resources
from pathlib import Path

import torch
from torch import Tensor

from vaelab.core.util import default_cache_dir, env_flag, first_line

SOURCES = ("kernels.c", "kmeans.c", "kmeanspp.c", "kmeans.h")
MAX_CLUSTERS = 16  # the most centres the C k-means serves (MAX_LANES in kmeans.c)
FLAGS = (
    "-O3",
    "-march=native",  # the cache key names the CPU, so a shared cache never crosses machines
    "-fno-math-errno",
    "-fno-trapping-math",
    "-fopenmp",
    "-fPIC",
    "-shared",
)
_turned_off = False


@functools.cache
def _load() -> tuple[ctypes.CDLL | None, str]:
    """The compiled kernels and a line saying what the step uses (built once per process)."""
    if not env_flag("VAELAB_KERNELS", True):
        return None, "torch ops: VAELAB_KERNELS is off"
    if platform.system() != "Linux":
        return None, "torch ops: the C kernels are built on Linux only"
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not compiler:
        return None, "torch ops: no C compiler (set CC or install gcc)"
    before = openmp_runtimes()  # torch's, and any other library's own (scikit-learn has one)
    try:
        path = _build(compiler)
        lib = ctypes.CDLL(str(path))
    except (OSError, subprocess.SubprocessError) as e:
        return None, f"torch ops: the C kernels did not build: {first_line(e)}"
    added = sorted(set(openmp_runtimes()) - set(before))
    if added:  # its own thread pool would fight torch's over the cores: never call into it
        return None, f"torch ops: the C kernels brought another OpenMP runtime ({added[0]})"
    i64, f32, f64, ptr = ctypes.c_int64, ctypes.c_float, ctypes.c_double, ctypes.c_void_p
    lib.bernoulli_nll.argtypes = [ptr, ptr, ptr, ptr, i64, i64, i64, i64, f32]
    lib.tanh_forward.argtypes = [ptr, i64]
    lib.softplus_forward.argtypes = [ptr, ptr, ptr, i64]
    lib.tanh_backward.argtypes = [ptr, ptr, i64]
    lib.latent_forward.argtypes = [ptr, ptr, ptr, ptr, i64, i64, i64, i64]
    lib.latent_backward.argtypes = [ptr, ptr, ptr, ptr, ptr, ptr, i64, i64, i64, i64, ptr]
    lib.kmeans_plusplus.argtypes = [ptr, ptr, ptr, ptr, i64, i64, i64, i64, i64]
    lib.kmeans_lloyd.argtypes = [ptr, ptr, ptr, ptr, ptr, ptr, i64, i64, i64, i64, f64, i64]
    lib.kmeans_plusplus.restype = lib.kmeans_lloyd.restype = ctypes.c_int
    for fn in (
        lib.bernoulli_nll,
        lib.tanh_forward,
        lib.softplus_forward,
        lib.tanh_backward,
        lib.latent_forward,
        lib.latent_backward,
    ):
        fn.restype = None
    return lib, "fused C kernels"


def openmp_runtimes(maps: str | None = None) -> list[str]:
    """The OpenMP runtime files mapped into this process (from /proc/self/maps)."""
    if maps is None:
        try:
            maps = Path("/proc/self/maps").read_text()
        except OSError:
            return []
    files = {line.split()[-1] for line in maps.splitlines() if len(line.split()) >= 6}
    return sorted(f for f in files if Path(f).name.startswith(("libgomp", "libiomp", "libomp")))


def _cpu_signature() -> str:
    """The CPU model and feature flags `-march=native` compiles for."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.machine()
    keep = [line for line in info.splitlines() if line.startswith(("model name", "flags"))]
    return "\n".join(sorted(set(keep)))


def _build(compiler: str) -> Path:
    """The shared library for these sources, compiler and CPU, compiled once into the cache."""
    folder = resources.files("vaelab.models").joinpath("csrc")
    sources = {name: folder.joinpath(name).read_bytes() for name in SOURCES}
    version = subprocess.run(
        [compiler, "--version"], capture_output=True, check=True, timeout=60
    ).stdout
    key = hashlib.sha256()
    for part in (*sources.values(), compiler.encode(), version, " ".join(FLAGS).encode()):
        key.update(part + b"\0")
    key.update(_cpu_signature().encode())
    folder = Path(os.environ.get("VAELAB_KERNEL_CACHE", default_cache_dir() / "kernels"))
    path = folder.expanduser() / f"kernels-{key.hexdigest()[:16]}.so"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="vaelab-kernels-") as tmp:
        files = [Path(tmp) / name for name in sources]
        for file, text in zip(files, sources.values(), strict=True):
            file.write_bytes(text)
        built = Path(tmp) / path.name
        subprocess.run(
            [compiler, *FLAGS, *(str(f) for f in files if f.suffix == ".c"), "-o", str(built)],
            capture_output=True,
            check=True,
            timeout=300,
        )
        partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        shutil.copyfile(built, partial)
        os.replace(partial, path)  # atomic: a concurrent build writes the same bytes
    return path


def kernels_status() -> str:
    """What the CPU training step uses: the fused C kernels, or torch ops and why."""
    return _load()[1]


def step_for(device: torch.device | str) -> str:
    """What a training step on `device` runs: on a CPU `kernels_status()`, elsewhere torch ops."""
    return kernels_status() if torch.device(device).type == "cpu" else "torch ops"


@contextlib.contextmanager
def turned_off() -> Iterator[None]:
    """Run the torch-op path inside the block (benchmarks and tests compare the two)."""
    global _turned_off
    before, _turned_off = _turned_off, True
    try:
        yield
    finally:
        _turned_off = before


def _usable(*tensors: Tensor, dtype: torch.dtype = torch.float32) -> ctypes.CDLL | None:
    lib = None if _turned_off else _load()[0]
    if lib is None:
        return None
    ok = all(t.device.type == "cpu" and t.dtype == dtype and t.is_contiguous() for t in tensors)
    return lib if ok else None


def bernoulli_nll_(logits: Tensor, x: Tensor, scale: float) -> Tensor | None:
    """Per-row NLL sums (G, K, B) of x (G, B, D) under logits (G, K, B, D); logits become the
    gradient (sigmoid(l) - x) * scale in place. None where the kernels do not apply."""
    lib = _usable(logits, x)
    if lib is None:
        return None
    g, k, b, d = logits.shape
    if x.shape != (g, b, d):
        raise ValueError(f"images {tuple(x.shape)} do not match logits {tuple(logits.shape)}")
    rows = torch.empty(g, k, b)
    ptr = logits.data_ptr()
    lib.bernoulli_nll(ptr, x.data_ptr(), ptr, rows.data_ptr(), g, k, b, d, scale)
    return rows


def bernoulli_nll_with_grad(logits: Tensor, x: Tensor) -> tuple[Tensor, Tensor] | None:
    """Per-row NLL sums (...) of x (B, D) under logits (..., B, D) and their gradient
    sigmoid(l) - x (..., B, D), in one pass; `logits` untouched. None where the kernels do not
    apply."""
    lib = _usable(logits, x)
    if lib is None or logits.ndim < 2 or x.shape != logits.shape[-2:]:
        return None
    b, d = x.shape
    grad, rows = torch.empty_like(logits), torch.empty(logits.shape[:-1])
    k = logits.numel() // max(b * d, 1)
    out = (grad.data_ptr(), rows.data_ptr())
    lib.bernoulli_nll(logits.data_ptr(), x.data_ptr(), *out, 1, k, b, d, 1.0)
    return rows, grad


def softplus_applies(a: Tensor) -> bool:
    """Whether `softplus(a)` runs the kernel (else it returns None)."""
    return _usable(a) is not None


def softplus(a: Tensor) -> tuple[Tensor, Tensor] | None:
    """softplus(a) and its slope sigmoid(a), each shaped as `a`, in one pass; None where the
    kernels do not apply."""
    lib = _usable(a)
    if lib is None:
        return None
    h, slope = torch.empty_like(a), torch.empty_like(a)
    lib.softplus_forward(a.data_ptr(), h.data_ptr(), slope.data_ptr(), a.numel())
    return h, slope


def tanh_(a: Tensor) -> bool:
    """tanh in place; False (and `a` untouched) where the kernels do not apply."""
    lib = _usable(a)
    if lib is None:
        return False
    lib.tanh_forward(a.data_ptr(), a.numel())
    return True


def tanh_grad_(grad: Tensor, h: Tensor) -> bool:
    """grad *= 1 - h^2 in place; False (and `grad` untouched) where the kernels do not apply."""
    lib = _usable(grad, h)
    if lib is None or grad.shape != h.shape:
        return False
    lib.tanh_backward(grad.data_ptr(), h.data_ptr(), grad.numel())
    return True


def latent_sample(heads: Tensor, eps: Tensor) -> tuple[Tensor, Tensor] | None:
    """z = mu + eps * std (G, K, B, Z) and std = exp(ln_var / 2) (G, B, Z), from heads
    (G, B, 2Z) holding mu then ln_var and noise eps (G, K, B, Z). None where not applicable."""
    lib = _usable(heads, eps)
    if lib is None:
        return None
    g, k, b, z = eps.shape
    std, out = torch.empty(g, b, z), torch.empty(g, k, b, z)
    lib.latent_forward(heads.data_ptr(), eps.data_ptr(), out.data_ptr(), std.data_ptr(), g, k, b, z)
    return out, std


def latent_grad(
    heads: Tensor, eps: Tensor, std: Tensor, dz: Tensor, c: Sequence[float]
) -> tuple[Tensor, Tensor] | None:
    """The gradient at the heads (G, B, 2Z) given dz (G, K, B, Z) and each member's KL weight
    per image c (G,), and each image's KL (G, B). None where the kernels do not apply."""
    lib = _usable(heads, eps, std, dz)
    if lib is None:
        return None
    g, k, b, z = eps.shape
    c = torch.tensor(c, dtype=torch.float32)
    d_heads, kl = torch.empty(g, b, 2 * z), torch.empty(g, b)
    lib.latent_backward(
        heads.data_ptr(),
        eps.data_ptr(),
        std.data_ptr(),
        dz.data_ptr(),
        d_heads.data_ptr(),
        kl.data_ptr(),
        g,
        k,
        b,
        z,
        c.data_ptr(),
    )
    return d_heads, kl


def kmeans_plusplus(x: Tensor, first: Tensor, uniforms: Tensor, k: int) -> Tensor | None:
    """Greedy k-means++ centres (R, k, D) of the points x (M, D) float64: start r's first
    centre is point first[r], its later ones the best of the candidates that uniforms
    (R, k - 1, T) pick. None where the kernels do not apply."""
    lib = _usable(x, uniforms, dtype=torch.float64)
    if lib is None or k > MAX_CLUSTERS:
        return None
    (m, d), (r, _, trials) = x.shape, uniforms.shape
    first = first.to(torch.int64).contiguous()
    outside = r > 0 and (int(first.min()) < 0 or int(first.max()) >= m)
    if uniforms.shape[1] != k - 1 or first.shape != (r,) or outside:  # C reads no further
        raise ValueError(f"starts {first.shape}, {uniforms.shape} do not fit {m} points, k = {k}")
    centres = torch.empty(r, k, d, dtype=torch.float64)
    args = (centres.data_ptr(), m, d, k, r, trials)
    if not lib.kmeans_plusplus(x.data_ptr(), first.data_ptr(), uniforms.data_ptr(), *args):
        raise MemoryError("k-means++ ran out of memory")
    return centres


def kmeans_lloyd(
    x: Tensor, centres: Tensor, tol: float, max_iter: int
) -> tuple[Tensor, Tensor, Tensor] | None:
    """scikit-learn's Lloyd from each start (R, k, D) on the centred points x (M, D), both
    float64: labels (R, M), inertia (R,) and iterations (R,). None where the kernels do not
    apply."""
    lib = _usable(x, centres, dtype=torch.float64)
    if lib is None or centres.shape[1] > MAX_CLUSTERS:
        return None
    (m, d), (r, k, width) = x.shape, centres.shape
    if width != d or k < 1:
        raise ValueError(f"centres {centres.shape} do not fit points {x.shape}")
    centres = centres.clone()
    labels = torch.empty(r, m, dtype=torch.int64)
    inertia = torch.empty(r, dtype=torch.float64)
    iterations = torch.empty(r, dtype=torch.int64)
    scratch = torch.empty(m, dtype=torch.float64)
    out = (labels.data_ptr(), inertia.data_ptr(), iterations.data_ptr())
    if not lib.kmeans_lloyd(
        x.data_ptr(), scratch.data_ptr(), centres.data_ptr(), *out, m, d, k, r, tol, max_iter
    ):
        raise MemoryError("k-means ran out of memory")
    return labels, inertia, iterations
