"""Number formatting in the report."""

from vaelab.report.page import fmt


def test_fmt():
    assert fmt(0.123456) == "0.123"
    assert fmt(123.456) == "123.5"
    assert fmt(None) == "—"
    assert fmt([0.5, 2]) == "[0.5, 2]"
    assert fmt({"a": 0.25, "b": [1, 0]}) == "a: 0.25; b: [1, 0]"
    assert fmt(True) == "true"
