"""explorer.html without a browser: the packed format, the numbers in it, the study writes it."""

import base64
import dataclasses
import json
import re
import zlib

import numpy as np
import pytest
import torch

from conftest import tiny_models, tiny_study
from vaelab.data.mnist import load_mnist
from vaelab.data.splits import test_subset
from vaelab.models.classifier import DigitClassifier
from vaelab.report.explorer import (
    CODE_MANTISSA,
    DECODER_MANTISSA,
    Packer,
    explorer_data,
    quantize,
    render_explorer,
    sample_rows,
)
from vaelab.study.pipeline import run_study


def unpack(buffer: bytes, spec: dict) -> np.ndarray:
    """What the page's unpack() does: byte planes, most significant first, back to float32."""
    count = int(np.prod(spec["shape"]))
    raw = np.frombuffer(buffer, np.uint8)
    if spec["format"] == "u8":
        return raw[spec["offset"] : spec["offset"] + count].reshape(spec["shape"])
    bits = np.zeros(count, np.uint32)
    for p in range(3):
        plane = raw[spec["offset"] + p * count : spec["offset"] + (p + 1) * count]
        bits |= plane.astype(np.uint32) << (24 - 8 * p)
    return bits.view(np.float32).reshape(spec["shape"])


def tensors_of(payload: dict) -> dict[str, np.ndarray]:
    buffer = zlib.decompress(base64.b64decode(payload["blob"]))
    return {name: unpack(buffer, spec) for name, spec in payload["tensors"].items()}


@pytest.fixture(scope="module")
def judge():
    data = tiny_study(100)
    return DigitClassifier(hidden=16, epochs=1).fit(data.x_train, data.y_train)


@pytest.mark.parametrize("mantissa", [10, 13, 15])
def test_quantize_keeps_the_relative_error_below_half_a_unit(mantissa):
    values = np.random.default_rng(0).normal(0, 3, 10_000).astype(np.float32)
    rounded = quantize(values, mantissa)
    assert np.all(np.abs(rounded - values) <= np.abs(values) * 2.0 ** -(mantissa + 1))
    assert np.array_equal(quantize(rounded, mantissa), rounded)  # rounded values stay put
    assert not np.array_equal(rounded, values)


def test_packed_tensors_come_back_as_quantized():
    pack = Packer()
    values = np.random.default_rng(1).normal(size=(5, 7)).astype(np.float32)
    images = np.arange(20, dtype=np.uint8).reshape(4, 5)
    pack.floats("w", values, 12)
    pack.bytes_u8("images", images)
    payload = {"blob": pack.blob(), "tensors": pack.index}
    got = tensors_of(payload)
    assert np.array_equal(got["w"], quantize(values, 12))
    assert np.array_equal(got["images"], images)


def decode_numpy(t: dict, model_entry: dict, z: np.ndarray, label: int) -> np.ndarray:
    """The page's decode, written again in numpy (float64), from the exported layer list."""
    decoder = model_entry["decoder"]
    x = z
    for layer in decoder["layers"]:
        x = x @ t[layer["weight"]].astype(np.float64).T + t[layer["bias"]].astype(np.float64)
        x = np.tanh(x) if layer["activation"] == "tanh" else x
    if label >= 0 and decoder["label_logits"]:
        x = x + t[decoder["label_logits"]].astype(np.float64)[label]
    return 1 / (1 + np.exp(-x))


def test_the_payload_decodes_as_pytorch_and_maps_codes_back(judge):
    models = tiny_models((2, 5))
    data = tiny_study(40)
    payload = explorer_data(models, data, judge, title="t", walk_steps=4)
    t = tensors_of(payload)
    assert [m["id"] for m in payload["models"]] == [
        f"{k}-z{z}" for z in (2, 5) for k in models_kinds()
    ]
    assert t[payload["images"]].shape == (40, 784) and payload["labels"] == data.y_test.tolist()
    rng = np.random.default_rng(0)
    for entry in payload["models"]:
        model = models[(entry["kind"], entry["latent"])]
        z = rng.normal(0, 2, size=(8, entry["latent"]))
        for label in (-1, 4) if model.uses_labels else (-1,):
            y = torch.full((8,), label) if model.uses_labels else None
            with torch.no_grad():
                expected = torch.sigmoid(model.decode(torch.tensor(z, dtype=torch.float32), y))
            assert np.abs(decode_numpy(t, entry, z, label) - expected.numpy()).max() < 1e-4
        codes, points = t[entry["codes"]], t[entry["map"]]
        mean, axes = t[entry["pca"]["mean"]], t[entry["pca"]["axes"]]
        labels = data.y_test if model.uses_labels else None
        exact = model.embed(data.x_test, labels).detach().numpy()
        assert np.allclose(codes, exact, rtol=2.0**-CODE_MANTISSA, atol=1e-7)
        # the map holds the codes' coordinates on the two axes: mapped back onto the plane
        # through their mean (as the page does), it lands on the codes' 2-D shadow
        assert np.allclose(points, codes @ axes.T, atol=1e-4)
        back = mean + (points - axes @ mean) @ axes
        shadow = mean + (codes - mean) @ axes.T @ axes
        assert np.abs(back - shadow).max() < 1e-3
        if entry["latent"] == 2:
            assert np.allclose(points, codes, atol=1e-5)
        else:
            assert np.allclose(axes @ axes.T, np.eye(2), atol=1e-4)
            assert 0 < sum(entry["pca"]["variance_share"]) <= 1 + 1e-9


def test_the_sample_keeps_the_reports_images_and_is_seeded():
    rows = sample_rows(1000, 50, keep=[999, 3, 3, 2000])
    assert len(rows) == 50 and len(set(rows.tolist())) == 50
    assert {3, 999} <= set(rows.tolist()) and rows.max() < 1000
    assert np.array_equal(rows, np.sort(rows))
    assert np.array_equal(rows, sample_rows(1000, 50, keep=[3, 999]))  # the same every time
    assert not np.array_equal(rows, sample_rows(1000, 50, keep=[3, 999], seed=1))
    assert rows.max() > 500, "drawn from all the test images, not the first 50"
    assert np.array_equal(sample_rows(30, 50, keep=[4]), np.arange(30))
    assert len(sample_rows(1000, 2, keep=[1, 5, 9])) == 3  # every kept image, even past n


def test_the_payload_numbers_its_images_as_the_study_does(judge):
    """The page's images are rows of the study's test images: their numbers (places among
    them), their labels, pixels and codes, and their index in MNIST's test set."""
    models = tiny_models((2,))
    data = tiny_study(200)
    data = dataclasses.replace(data, test_index=np.arange(200) * 7 + 5)
    walks = [(190, 7), (150, 120)]
    payload = explorer_data(
        models,
        data,
        judge,
        title="t",
        walk_steps=3,
        seed=2,
        seeds=[2, 3],
        walks=walks,
        examples=[77],
        max_points=40,
    )
    t = tensors_of(payload)
    numbers = payload["index"]
    assert len(numbers) == 40 and {190, 7, 150, 120, 77} <= set(numbers)
    assert numbers != list(range(40)) and numbers == sorted(numbers)
    assert payload["walks"] == [[190, 7], [150, 120]] and payload["test_images"] == 200
    assert payload["mnist_index"] == [7 * n + 5 for n in numbers]
    assert payload["labels"] == data.y_test[numbers].tolist()
    pixels = np.rint(data.x_test[numbers].numpy() * 255)
    assert np.array_equal(t[payload["images"]], pixels)
    for entry in payload["models"]:
        model = models[(entry["kind"], entry["latent"])]
        labels = data.y_test[numbers] if model.uses_labels else None
        exact = model.embed(data.x_test[numbers], labels).detach().numpy()
        assert np.allclose(t[entry["codes"]], exact, rtol=2.0**-CODE_MANTISSA, atol=1e-7)
    assert payload["seed"] == 2 and payload["seeds"] == [2, 3]
    assert payload["report"] == "report.html"


def models_kinds():
    return ("ae", "vae", "cvae")


def test_a_title_cannot_close_the_data_script(judge):
    payload = explorer_data(
        tiny_models((2,)), tiny_study(20), judge, title="</script>x", walk_steps=3
    )
    html = render_explorer(payload)
    assert html.count("</script>") == 2  # the data's and the program's own
    data = re.search(r'id="vaelab-data">(.*?)</script>', html, re.S).group(1)
    assert json.loads(data)["title"] == "</script>x"
    assert not re.search(r'(src|href)="(https?:)?//', html)


def test_a_quick_sized_page_stays_under_5_mb():
    """Twelve decoders (z = 2, 4, 16, 64) and the study's classifier (hidden 256)."""
    torch.manual_seed(0)
    data = tiny_study(2000)
    judge = DigitClassifier(epochs=1).fit(data.x_test[:200], data.y_test[:200])
    payload = explorer_data(tiny_models((2, 4, 16, 64)), data, judge, title="q", walk_steps=30)
    size = len(render_explorer(payload).encode())
    print(f"explorer.html for a quick-sized study: {size / 1e6:.2f} MB")
    assert 2e6 < size < 5e6
    assert DECODER_MANTISSA == 13


def test_a_study_writes_the_explorer_and_the_report_links_it(tmp_path, prototype_npz):
    preset = tmp_path / "mini.toml"
    preset.write_text(
        'name = "mini"\nmodels = ["vae", "cvae"]\nlatents = [2, 4]\n'
        "[train]\nepochs = 1\nbatch_size = 50\ncheckpoint_every = 1\neval_every = 1\n"
        "[data]\ntest_size = 100\nn_labelled = 200\n"
        "[experiments]\nrecon_latents = [4]\nkmeans_runs = 2\niwae_samples = 4\n"
        "iwae_images = 10\nelbo_samples = 1\nwalk_steps = 4\nclassifier_epochs = 1\n"
    )
    out = tmp_path / "study"
    report = run_study(str(preset), out, data_path=prototype_npz, device="cpu")
    html = report.read_text()
    assert 'href="explorer.html"' in html and "<script" not in html
    assert "Style versus digit" in html
    page = (out / "explorer.html").read_text()
    data = json.loads(re.search(r'id="vaelab-data">(.*?)</script>', page, re.S).group(1))
    assert [m["id"] for m in data["models"]] == ["vae-z2", "cvae-z2", "vae-z4", "cvae-z4"]
    assert data["walk_steps"] == 4 and len(data["labels"]) == 100
    assert data["seed"] == 0 and data["report"] == "report.html"
    endpoints = json.loads((out / "results.json").read_text())["experiments"]["interpolation"]
    first = endpoints["endpoints"]["1to0"]
    assert data["walks"][0] == [first["start_index"], first["end_index"]]
    assert data["index"] == list(range(100))  # all 100 test images, by their number
    subset = test_subset(load_mnist(prototype_npz).y_test, 100, 0)  # the preset's data.seed
    assert data["mnist_index"] == subset.tolist()
    results = json.loads((out / "results.json").read_text())
    assert results["experiments"]["style"]["latents"] == [4]
