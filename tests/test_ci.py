"""Under CI a test that would skip fails; elsewhere it skips (conftest.py)."""

from pathlib import Path

import pytest

from conftest import under_ci

SKIPPING = """
import pytest

def test_without_a_compiler():
    pytest.skip("no C kernels here: torch ops: no C compiler")

@pytest.mark.skipif(True, reason="no Chromium found")
def test_without_chromium():
    pass

def test_without_a_package():
    pytest.importorskip("no_such_package_here")

@pytest.mark.xfail(reason="a known failure stays one")
def test_known_to_fail():
    assert False

def test_that_runs():
    assert True
"""


@pytest.fixture
def suite(pytester):
    pytester.makeconftest(Path(__file__).with_name("conftest.py").read_text())
    pytester.makepyfile(test_skipping=SKIPPING)
    return pytester


def test_under_ci_a_skip_is_a_failure_that_says_why(suite, monkeypatch):
    monkeypatch.setenv("CI", "true")
    result = suite.runpytest("-rfE")
    result.assert_outcomes(failed=2, errors=1, xfailed=1, passed=1)  # skipif: at setup
    result.stdout.fnmatch_lines(["*skipped under CI*no C compiler*"])
    result.stdout.fnmatch_lines(["*skipped under CI*no Chromium found*"])
    result.stdout.fnmatch_lines(["*skipped under CI*no_such_package_here*"])


def test_elsewhere_a_skip_stays_a_skip(suite, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    suite.runpytest().assert_outcomes(skipped=3, xfailed=1, passed=1)


@pytest.mark.parametrize("value", ["true", "1", "TRUE", "yes", "false", "", "0"])
def test_what_counts_as_ci(monkeypatch, value):
    monkeypatch.setenv("CI", value)
    assert under_ci() is (value.lower() in ("true", "1", "yes"))
