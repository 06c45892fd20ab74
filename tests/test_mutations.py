"""The mutation list (tests/mutations.toml) stays in step with the code, and the tool that runs
it (scripts/mutations.py) reports a moved snippet as an error, not as a survivor."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("mutations", ROOT / "scripts" / "mutations.py")
mutations = importlib.util.module_from_spec(spec)
sys.modules["mutations"] = mutations  # its dataclasses look their module up there
spec.loader.exec_module(mutations)
LISTED = mutations.read_list()
REPORTED = {"bound", "interval", "V-measure", "classifier reading", "verdict"}


@pytest.mark.parametrize("m", LISTED, ids=[m.name for m in LISTED])
def test_each_mutation_changes_one_place_of_the_code_as_it_is(m):
    text = (ROOT / m.file).read_text()
    assert text.count(m.old) == 1, f"{m.name}: the snippet moved; update tests/mutations.toml"
    assert m.new != m.old and m.tests and m.breaks


@pytest.mark.parametrize("m", LISTED, ids=[m.name for m in LISTED])
def test_each_mutation_names_tests_that_exist(m):
    for node in m.tests:
        path, _, name = node.partition("::")
        source = (ROOT / path).read_text()
        if name:
            function = re.sub(r"\[.*\]$", "", name)
            assert re.search(rf"^def {re.escape(function)}\(", source, re.MULTILINE), node


def test_every_result_the_report_shows_has_a_mutation_and_the_pending_say_why():
    assert {m.shows for m in LISTED} >= REPORTED
    assert all(m.pending is None or "issue" in m.pending for m in LISTED)


def test_a_snippet_found_other_than_once_is_an_error(tmp_path):
    (tmp_path / "a.py").write_text("x = 1\nx = 1\n")
    m = LISTED[0]
    twice = mutations.Mutation("m", "bound", "a.py", "x = 1", "x = 2", ("t",), "b")
    assert "2 times" in mutations.apply(twice, tmp_path)
    gone = mutations.Mutation("m", "bound", "a.py", "y = 1", "y = 2", ("t",), "b")
    assert "0 times" in mutations.apply(gone, tmp_path)
    assert "does not exist" in mutations.apply(m, tmp_path)
    once = mutations.Mutation("m", "bound", "a.py", "x = 1\nx", "x = 2\nx", ("t",), "b")
    assert mutations.apply(once, tmp_path) is None
    assert (tmp_path / "a.py").read_text() == "x = 2\nx = 1\n"


def test_only_a_survivor_marked_pending_is_as_expected():
    m = LISTED[0]
    pending = mutations.Mutation(**{**m.__dict__, "pending": "issue 26 will catch it"})
    assert mutations.Outcome(m, "caught", "", 0).as_expected
    assert not mutations.Outcome(m, "survived", "", 0).as_expected
    assert mutations.Outcome(pending, "survived", "", 0).as_expected
    assert not mutations.Outcome(pending, "error", "", 0).as_expected


def test_failed_tests_are_read_from_pytests_summary():
    output = (
        "FAILED tests/test_a.py::test_b[inference float32 kernels] - AssertionError: x\n"
        "ERROR tests/test_c.py::test_d\n"
        "1 failed, 1 error in 2.0s\n"
    )
    assert mutations.failed_tests(output) == [
        "tests/test_a.py::test_b[inference float32 kernels]",
        "tests/test_c.py::test_d",
    ]
