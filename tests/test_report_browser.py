"""report.html in a real browser (Debian's Chromium through Playwright): at 1280 x 800 the
title, the trust line and the verdict matrix of all eight claims fit on the first screen;
every claim's link lands on a section that holds its evidence; no script, no console error,
nothing fetched from elsewhere."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conftest import copy_study
from test_explorer_browser import chromium  # noqa: F401  (the browser fixture, shared)
from vaelab.study.pipeline import run_study

VIEWPORT = {"width": 1280, "height": 800}
EVIDENCE = {  # what each claim's section shows beside its forest plot
    1: '[role="img"][aria-label^="Reconstructions of a"]',
    2: '[role="img"][aria-label^="Reconstructions of a"]',
    3: '[role="img"][aria-label^="Reconstructions of a"]',
    4: 'img[alt^="VAE z="][alt$="(frames)"]',
    5: '[role="img"][aria-label*="z=2"]',
    6: '[role="img"][aria-label*="z=2"]',
    7: '[role="img"][aria-label^="k-means on z="]',
    8: '[role="img"][aria-label^="k-means on z="]',
}


@pytest.fixture(scope="module")
def report(tiny_preset_study, tmp_path_factory) -> Path:
    """The tiny preset's study with two seeds: every figure, every table, intervals (seed 0's
    models and experiments reused from the session's tiny study)."""
    root = tmp_path_factory.mktemp("report")
    copy_study(tiny_preset_study[0], root / "out")
    tiny = Path(__file__).parents[1] / "src/vaelab/core/presets/tiny.toml"
    preset = root / "two_seeds.toml"
    preset.write_text(tiny.read_text().replace('name = "tiny"', 'name = "tiny"\nseeds = [0, 1]'))
    run_study(str(preset), root / "out", device="cpu")
    return root / "out" / "report.html"


@pytest.fixture(scope="module")
def page(chromium, report):  # noqa: F811  (the imported fixture)
    page = chromium.new_page(viewport=VIEWPORT)
    errors: list[str] = []
    requests: list[str] = []
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(report.as_uri())
    page.wait_for_load_state("load")
    yield page, errors, requests
    page.close()


def test_the_verdict_matrix_is_above_the_fold(page, report):
    page, _, _ = page
    box = page.locator("#verdicts").bounding_box()
    assert box is not None and box["y"] > 0
    assert box["y"] + box["height"] <= VIEWPORT["height"], box
    claims = json.loads((report.parent / "results.json").read_text())["claims"]
    rows = page.locator("#verdicts tr:has(td.verdict)")
    assert rows.count() == 8
    for row, claim in zip(rows.all(), claims, strict=True):
        assert row.locator(".badge").inner_text() == claim["verdict"]
        assert row.locator(".c").count() == len(claim["comparisons"])  # a cell each
    for selector in ("h1", "p.trust", "nav.toc"):
        found = page.locator(selector).bounding_box()
        assert found is not None and found["y"] + found["height"] <= box["y"], selector
    cell = page.locator("#verdicts td .c").first.get_attribute("title")
    assert " = " in cell and " to " in cell  # its effect and interval on hover


def test_every_claim_link_lands_on_a_section_holding_its_evidence(page):
    page, _, _ = page
    for number, evidence in EVIDENCE.items():
        page.locator(f'#verdicts a[href="#claim-{number}"]').click()
        assert page.evaluate("location.hash") == f"#claim-{number}"
        top = page.evaluate(
            f"document.getElementById('claim-{number}').getBoundingClientRect().top"
        )
        assert abs(top) < 5, (number, top)  # the section opens at the top of the window
        section = page.locator(f"section#claim-{number}")
        assert (
            section.locator(
                f'img[alt="claim {number}: each comparison\'s effect and interval"]'
            ).count()
            == 1
        )
        shown = section.locator(evidence)
        assert shown.count() >= 1, (number, evidence)
        first = shown.first.bounding_box()
        assert first is not None and first["width"] > 100 and first["height"] > 100
        if shown.first.get_attribute("role") == "img":  # drawn from the one inlined copy
            image = shown.first.evaluate("e => getComputedStyle(e).backgroundImage")
            assert image.startswith('url("data:image/png;base64,'), number


def test_one_name_per_model_one_arrow_and_no_exponent_on_the_page(page):
    page, _, _ = page
    text = page.inner_text("body")  # what a reader sees (closed folds left out)
    assert "->" not in text and "→" in text
    assert not re.search(r"\d(\.\d+)?e[-+]\d", text), re.search(r".{40}\de[-+]\d.{10}", text)
    assert not re.search(r"\b(ae|vae|cvae)\b(?!-z)", text)  # only run folders are lower case
    assert "CVAE (no label)" in text and "CVAE (true label)" in text


def test_the_page_runs_no_script_logs_no_error_and_fetches_nothing(page, report):
    page, errors, requests = page
    assert page.evaluate("document.scripts.length") == 0
    assert "<script" not in report.read_text().lower()
    assert errors == []
    assert all(url.startswith(("file://", "data:")) for url in requests), requests
