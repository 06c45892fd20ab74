"""explorer.html in a real browser (Debian's Chromium through Playwright): it runs offline,
keeps its layout at 1280 x 800 for every model, what it decodes and reads equals what PyTorch
decodes and the classifier reads, and its controls do what they say."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from explorer_page import (
    N_TEST,
    SEED,
    SHOWN,
    VIEWPORT,
    WALK_STEPS,
    Page,
    apart,
    codes_of,
    make_study,
    model_of,
    torch_decode,
)
from vaelab.experiments.interpolation import latent_walk

TOLERANCE = 1e-4  # page's decoded probabilities against PyTorch's
ARTICLE_MODELS = {f"{k}-z{z}" for k in ("ae", "vae", "cvae") for z in (2, 4, 16, 64)}
FRAME_RGB = (255, 191, 0)  # the walk's current frame on the map


def chromium_path() -> str | None:
    """$VAELAB_CHROMIUM (CI sets it: then it must exist), /usr/bin/chromium, or one on PATH."""
    required = os.environ.get("VAELAB_CHROMIUM")
    if required:
        if not Path(required).is_file():
            pytest.fail(f"VAELAB_CHROMIUM={required} does not exist")
        return required
    if Path("/usr/bin/chromium").is_file():
        return "/usr/bin/chromium"
    return shutil.which("chromium")


@pytest.fixture(scope="module")
def chromium():
    executable = chromium_path()
    if executable is None:
        pytest.skip("no Chromium found: install Debian's chromium package to run the browser tests")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def explorer_study(tmp_path_factory):
    return make_study(tmp_path_factory.mktemp("explorer"))


@pytest.fixture
def explorer(chromium, explorer_study):
    page = Page(chromium, explorer_study.path)
    yield page
    page.page.close()
    assert page.errors == [], "the page logged no error"


def test_page_runs_offline_without_errors(explorer, tmp_path):
    assert explorer.js("(x) => x.models.size") == 13  # the article's 12 models and an M2
    assert "13 models loaded" in explorer.page.inner_text("#status")
    explorer.page.screenshot(path=str(tmp_path / "explorer.png"), full_page=True)
    print(f"screenshot: {tmp_path / 'explorer.png'}")
    assert (tmp_path / "explorer.png").stat().st_size > 10_000
    assert explorer.requests and all(u.startswith(("file:", "data:")) for u in explorer.requests)
    labels = explorer.page.eval_on_selector_all(
        "select, input", "els => els.map(e => e.labels.length && e.labels[0].textContent.trim())"
    )
    assert all(labels), "every control has a label"
    assert explorer.errors == []


def assert_side_by_side(page) -> None:
    """The map and the decoded image next to each other, both wholly in the window."""
    box = {n: page.locator(f"#{n}").bounding_box() for n in ("map", "decoded")}
    m, d = box["map"], box["decoded"]
    assert d["x"] >= m["x"] + m["width"], "the decoded image is right of the map"
    assert d["y"] < m["y"] + m["height"] and d["y"] + d["height"] > m["y"], "at its height"
    for b in (m, d):
        assert b["x"] >= 0 and b["y"] >= 0
        assert b["x"] + b["width"] <= VIEWPORT["width"]
        assert b["y"] + b["height"] <= VIEWPORT["height"]
    assert page.evaluate("document.documentElement.scrollWidth") <= VIEWPORT["width"]


def test_every_model_keeps_the_map_beside_the_decoded_image_at_1280_by_800(explorer):
    page = explorer.page
    ids = page.eval_on_selector_all("#model option", "os => os.map(o => o.value)")
    assert set(ids) == ARTICLE_MODELS | {"m2-z2"}
    for model_id in ids:
        page.select_option("#model", model_id)
        box = page.locator("#map").bounding_box()
        page.mouse.move(box["x"] + 0.4 * box["width"], box["y"] + 0.6 * box["height"])
        assert_side_by_side(page)
        if model_id.startswith("cvae"):
            page.select_option("#label", "7")
            assert_side_by_side(page)
            page.select_option("#label", "-1")
    # whatever the notes say, and however long their words, the layout holds
    page.evaluate(
        """() => {
            const long = "unbreakable".repeat(40) + " and a note that goes on".repeat(80);
            for (const id of ["map-note", "point-info", "under-caption", "nearest",
                              "walk-reading", "walk-message", "walk-a-caption"])
                document.getElementById(id).textContent = long;
        }"""
    )
    assert_side_by_side(page)


def test_clicking_the_map_decodes_and_leaves_the_walk_alone(explorer, explorer_study):
    page = explorer.page
    page.select_option("#model", "vae-z2")  # untrained: its dots lie apart
    model = explorer_study.models[("vae", 2)]
    walk = explorer.js("(x) => [x.walk.start, x.walk.end]")
    inputs = [page.input_value("#walk-start"), page.input_value("#walk-end")]
    codes = codes_of(explorer_study, "vae", explorer_study.shown)
    units = explorer.js("(x) => x.view.extent") / explorer.js("(x) => x.view.box.width")
    isolated = apart(codes, 1 / units)[:3]
    assert len(isolated) >= 2
    for position in isolated:
        page.mouse.click(*explorer.on_map(*codes[position]))
        z, decoded = explorer.js("(x) => [x.z, Array.from(x.decoded)]")
        assert np.abs(np.array(z) - codes[position]).max() < 1.5 * units, "decodes where clicked"
        assert np.abs(np.array(decoded) - torch_decode(model, z)).max() < TOLERANCE
        assert explorer.js("(x) => [x.walk.start, x.walk.end]") == walk
        assert [page.input_value("#walk-start"), page.input_value("#walk-end")] == inputs
    page.mouse.move(2, 2)  # leaving the map: the clicked point stays decoded
    assert np.abs(np.array(explorer.js("(x) => x.z")) - np.array(z)).max() < 1e-9


def walk_on_map(explorer, a, b) -> tuple[np.ndarray, np.ndarray]:
    """Canvas pixels of map points a and b."""
    to = "(x, p) => x.view.toCanvas(p[0], p[1])"
    return np.array(explorer.js(to, list(a))), np.array(explorer.js(to, list(b)))


def test_walk_ends_are_set_by_their_controls_and_drawn_on_the_map(explorer, explorer_study):
    page, data = explorer.page, explorer_study.data
    page.select_option("#model", "vae-z2")
    shown = explorer_study.shown
    codes = codes_of(explorer_study, "vae", shown)
    units = explorer.js("(x) => x.view.extent") / explorer.js("(x) => x.view.box.width")
    isolated = apart(codes, 1 / units)
    digits = data.y_test[shown].tolist()
    a = isolated[0]
    b = next(i for i in isolated if digits[i] != digits[a])
    page.mouse.click(*explorer.on_map(*codes[a]))
    page.click("#set-start")
    page.mouse.click(*explorer.on_map(*codes[b]))
    page.click("#set-end")
    start, end = shown[a], shown[b]  # the numbers of the images clicked, computed here
    assert page.input_value("#walk-start") == f"{start}"
    assert page.input_value("#walk-end") == f"{end}"
    for canvas, number in (("walk-a", start), ("walk-b", end)):
        pixels = np.rint(data.x_test[number].numpy() * 255)
        assert np.abs(explorer.canvas_pixels(canvas) - pixels).max() <= 1
        caption = page.inner_text(f"#{canvas}-caption")
        assert caption.startswith(f"#{number}, a {int(data.y_test[number])}")
    # the keyboard sets an end the same way: S at the marker's nearest image
    page.focus("#map")
    page.keyboard.press("s")
    assert page.input_value("#walk-start") == f"{end}"
    page.mouse.click(*explorer.on_map(*codes[a]))
    page.keyboard.press("s")
    assert page.input_value("#walk-start") == f"{start}"
    # drawn: a black line from start to end, and the current frame as a yellow disc on it;
    # the marker is moved to the plot's corner farthest from the walk first
    ends = walk_on_map(explorer, codes[a], codes[b])
    box = explorer.js("(x) => x.view.box")
    corners = [
        (box["left"] + dx * box["width"], box["top"] + dy * box["height"])
        for dx in (0.03, 0.97)
        for dy in (0.03, 0.97)
    ]
    far = max(corners, key=lambda c: min(np.hypot(*(np.array(c) - e)) for e in ends))
    page.mouse.click(*explorer.screen(*far))
    page.mouse.move(2, 2)
    origin = np.array(explorer.js("(x) => x.view.toCanvas(0, 0)"))
    rgb = explorer.map_rgb().astype(int)
    for t in (0.25, 0.4, 0.6, 0.75):
        x, y = np.rint((1 - t) * ends[0] + t * ends[1]).astype(int)
        if np.hypot(*(np.array([x, y]) - origin)) > 12:
            assert (rgb[y - 1 : y + 2, x - 1 : x + 2].max(axis=-1) < 60).any(), f"line at t={t}"
    slider = page.locator("#walk-frame-slider")
    for frame in (0, 3, WALK_STEPS - 1):
        slider.fill(str(frame))
        t = frame / (WALK_STEPS - 1)
        x, y = np.rint((1 - t) * ends[0] + t * ends[1]).astype(int)
        assert np.abs(explorer.map_rgb()[y, x].astype(int) - FRAME_RGB).max() < 30, frame


def test_play_runs_the_walk_and_pause_stops_it(explorer, explorer_study):
    page = explorer.page
    page.select_option("#model", "vae-z4")
    model = explorer_study.models[("vae", 4)]
    start, end = explorer_study.walks[1]
    page.fill("#walk-start", str(start))
    page.dispatch_event("#walk-start", "change")
    page.fill("#walk-end", str(end))
    page.dispatch_event("#walk-end", "change")
    frames = latent_walk(
        model, explorer_study.data.x_test[start], explorer_study.data.x_test[end], WALK_STEPS
    ).numpy()
    page.click("#play")
    assert page.get_attribute("#play", "aria-pressed") == "true"
    seen = set()
    for _ in range(100):
        frame = int(page.input_value("#walk-frame-slider"))
        seen.add(frame)
        if len(seen) >= 3:
            break
        page.wait_for_timeout(50)
    assert len(seen) >= 3, "playing moves through the frames"
    page.click("#play")
    assert page.get_attribute("#play", "aria-pressed") == "false"
    frame = int(page.input_value("#walk-frame-slider"))
    page.wait_for_timeout(500)
    assert int(page.input_value("#walk-frame-slider")) == frame, "paused"
    shown = explorer.canvas_pixels("walk-frame")
    assert np.abs(shown - frames[frame] * 255).max() <= 1.0 + 1e-6
    current = page.eval_on_selector_all("#walk-strip li.current", "ls => ls.length")
    assert current == 1
    strip = page.eval_on_selector_all("#walk-strip li", "ls => ls.map(l => l.className)")
    assert strip.index("current") == frame and len(strip) == WALK_STEPS


def test_the_page_names_its_seed_and_links_to_the_report(explorer):
    note = explorer.page.inner_text("#seed-note")
    assert f"run seed {SEED}" in note and "3, 4" in note
    assert f"{SHOWN} of the {N_TEST} test images" in note
    link = explorer.page.locator("#report-link")
    assert link.get_attribute("href") == "report.html" and "report" in link.inner_text()


def test_test_images_carry_the_studys_numbers(explorer, explorer_study):
    page, data, shown = explorer.page, explorer_study.data, explorer_study.shown
    assert shown != list(range(SHOWN)), "the page's images are a sample, not the first ones"
    # the page opens on the report's first walk
    first = explorer_study.walks[0]
    assert [page.input_value("#walk-start"), page.input_value("#walk-end")] == list(map(str, first))
    page.select_option("#model", "vae-z2")
    codes = codes_of(explorer_study, "vae", shown)
    units = explorer.js("(x) => x.view.extent") / explorer.js("(x) => x.view.box.width")
    for position in apart(codes, 1 / units, gap=8)[:4]:
        number = shown[position]
        page.mouse.move(*explorer.on_map(*codes[position]))
        caption = page.inner_text("#under-caption")
        mnist = int(data.test_index[number])
        assert f"#{number}, a {int(data.y_test[number])} (MNIST test image {mnist})" in caption
        pixels = np.rint(data.x_test[number].numpy() * 255)
        assert np.abs(explorer.canvas_pixels("under") - pixels).max() <= 1
    # a number typed: that image, if the page holds it
    number = next(n for n in shown if n not in first)
    page.fill("#walk-end", str(number))
    page.dispatch_event("#walk-end", "change")
    pixels = np.rint(data.x_test[number].numpy() * 255)
    assert np.abs(explorer.canvas_pixels("walk-b") - pixels).max() <= 1
    missing = next(n for n in range(N_TEST) if n not in shown)
    page.fill("#walk-end", str(missing))
    page.dispatch_event("#walk-end", "change")
    assert f"#{missing} is not among" in page.inner_text("#walk-message")
    assert page.input_value("#walk-end") == str(number)


def test_pointer_decodes_what_pytorch_decodes(explorer, explorer_study):
    models = explorer_study.models
    explorer.page.select_option("#model", "vae-z4")
    box = explorer.page.locator("#map").bounding_box()
    seen = []
    for fx, fy in ((0.3, 0.4), (0.7, 0.6)):
        explorer.page.mouse.move(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
        z, decoded = explorer.js("(x) => [x.z, Array.from(x.decoded)]")
        expected = torch_decode(models[("vae", 4)], z)
        assert np.abs(np.array(decoded) - expected).max() < TOLERANCE
        # the 8-bit canvas: each cell within one grey level of PyTorch's pixel
        assert np.abs(explorer.canvas_pixels("decoded") - expected * 255).max() <= 1.0 + 1e-6
        seen.append(explorer.canvas_pixels("decoded"))
    assert np.abs(seen[0] - seen[1]).max() > 5, "moving the pointer changes the decoded image"


def test_every_model_and_label_decodes_fixed_points_as_pytorch(explorer, explorer_study):
    models = explorer_study.models
    rng = np.random.default_rng(0)
    for model_id in explorer.js("(x) => [...x.models.keys()]"):
        model = model_of(models, model_id)
        labels = range(-1, 10) if model.uses_labels else [-1]
        for z in rng.normal(0, 1.5, size=(2, model.cfg.latent)).tolist():
            got = explorer.js(
                "(x, a) => a[2].map((y) => Array.from(x.decode(a[0], a[1], y)))",
                [model_id, z, list(labels)],
            )
            for label, image in zip(labels, got, strict=True):
                assert np.abs(np.array(image) - torch_decode(model, z, label)).max() < TOLERANCE


def test_the_map_is_the_codes_on_their_principal_plane_and_maps_back_onto_it(
    explorer, explorer_study
):
    data, shown = explorer_study.data, explorer_study.shown
    for model_id in ("vae-z2", "cvae-z16", "ae-z64"):
        model = model_of(explorer_study.models, model_id)
        labels = data.y_test[shown] if model.uses_labels else None
        codes = model.embed(data.x_test[shown], labels).detach().numpy().astype(np.float64)
        points, axes, back = explorer.js(
            """(x, id) => { const m = x.models.get(id);
                return [Array.from(m.points), Array.from(m.axes), x.backMap(id, 0.3, -0.2)]; }""",
            model_id,
        )
        points, axes = np.array(points).reshape(-1, 2), np.array(axes).reshape(2, -1)
        if model.cfg.latent == 2:  # the latent space itself
            assert np.allclose(points, codes, atol=1e-4) and np.allclose(back, [0.3, -0.2])
            continue
        # two orthonormal axes spanning the codes' top two principal directions (found
        # here again), each code's coordinates on them, and a back-map onto the plane
        # through the codes' mean that has the coordinates asked for
        _, _, vt = np.linalg.svd(codes - codes.mean(axis=0), full_matrices=False)
        assert np.allclose(axes @ axes.T, np.eye(2), atol=1e-4)
        assert np.allclose(axes.T @ axes, vt[:2].T @ vt[:2], atol=1e-2)
        assert np.allclose(points, codes @ axes.T, atol=1e-3)
        assert np.allclose(axes @ back, [0.3, -0.2], atol=1e-4)
        off = np.array(back) - codes.mean(axis=0)
        assert np.abs(off - axes.T @ (axes @ off)).max() < 1e-3


def test_cvae_label_changes_the_digit_not_the_point(explorer, explorer_study):
    model = explorer_study.models[("cvae", 2)]
    explorer.page.select_option("#model", "cvae-z2")
    explorer.page.focus("#map")
    explorer.page.keyboard.press("ArrowRight")  # the keyboard moves the marker
    images = {}
    for label in ("3", "8", "-1"):
        explorer.page.select_option("#label", label)
        z, decoded = explorer.js("(x) => [x.z, Array.from(x.decoded)]")
        images[label] = (z, explorer.canvas_pixels("decoded"))
        assert np.abs(np.array(decoded) - torch_decode(model, z, int(label))).max() < TOLERANCE
    assert images["3"][0] == images["8"][0] == images["-1"][0], "the same z is re-decoded"
    assert np.abs(images["3"][1] - images["8"][1]).max() > 5
    assert explorer.page.is_disabled("#label") is False
    explorer.page.select_option("#model", "vae-z2")
    assert explorer.page.is_disabled("#label")


def test_arrow_keys_move_the_marker(explorer):
    explorer.page.focus("#map")
    before = explorer.js("(x) => x.marker")
    explorer.page.keyboard.press("ArrowRight")
    explorer.page.keyboard.press("ArrowUp")
    after, extent = explorer.js("(x) => [x.marker, x.view.extent]")
    assert after[0] - before[0] == pytest.approx(0.01 * extent)
    assert after[1] - before[1] == pytest.approx(0.01 * extent)


def test_walk_readings_match_pytorch(explorer, explorer_study):
    models, data, judge = explorer_study.models, explorer_study.data, explorer_study.judge
    model = models[("vae", 4)]
    explorer.page.select_option("#model", "vae-z4")
    start, end = explorer_study.walks[1]
    explorer.page.fill("#walk-start", str(start))
    explorer.page.dispatch_event("#walk-start", "change")
    explorer.page.fill("#walk-end", str(end))
    explorer.page.dispatch_event("#walk-end", "change")
    frames = latent_walk(model, data.x_test[start], data.x_test[end], WALK_STEPS)
    readings = judge.predict(frames).tolist()
    assert explorer.js("(x) => x.walk.readings") == readings
    shown = explorer.page.eval_on_selector_all(
        "#walk-strip li span", "s => s.map(e => e.textContent)"
    )
    assert shown == [str(r) for r in readings]
    assert len(set(readings)) > 1, "a walk between two digits passes more than one reading"
    slider = explorer.page.locator("#walk-frame-slider")
    slider.focus()
    explorer.page.keyboard.press("Home")
    for frame in range(WALK_STEPS):  # scrub the walk frame by frame
        decoded = np.array(explorer.js("(x) => Array.from(x.walk.decoded)"))
        assert np.abs(decoded - frames[frame].numpy()).max() < TOLERANCE
        strip = explorer.canvas_pixels_of(f"#walk-strip li:nth-child({frame + 1}) canvas")
        assert np.abs(strip - frames[frame].numpy() * 255).max() <= 1.0 + 1e-6
        assert f"reads {readings[frame]}" in explorer.page.inner_text("#walk-reading")
        explorer.page.keyboard.press("ArrowRight")


def test_m2_reads_the_decoded_point_with_its_own_classifier(explorer, explorer_study):
    model = explorer_study.models[("m2", 2)]
    explorer.page.select_option("#model", "m2-z2")
    explorer.page.focus("#map")
    for press, label in (("ArrowRight", "-1"), ("ArrowUp", "-1"), ("ArrowLeft", "4")):
        explorer.page.keyboard.press(press)
        explorer.page.select_option("#label", label)
        z, decoded = explorer.js("(x) => [x.z, Array.from(x.decoded)]")
        assert np.abs(np.array(decoded) - torch_decode(model, z, int(label))).max() < TOLERANCE
        want = model.predict_proba(torch.tensor([decoded], dtype=torch.float32))[0].numpy()
        got = explorer.js("(x) => classifyWith(x.model.q_y, x.decoded)")
        assert np.abs(np.array(got) - want).max() < 1e-3
        text = explorer.page.text_content("#point-info")
        assert f"its own q(y|x) reads a {int(want.argmax())}" in text
