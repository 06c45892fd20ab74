"""The rules behind the article's eight claims, each applied to ONE seed's numbers.

A rule is a pure function from one seed's experiment numbers (`{experiment name: numbers}`)
to named comparisons, each a `Check`: the effect (a difference of two estimates, with its
test-image resamples, see `vaelab.evaluation.evidence`), the sign the article expects it to
have, and what was compared. A rule leaves out a comparison whose numbers the seed lacks.
`vaelab.claims.verdicts` pools each comparison over the seeds and turns the outcomes into a
verdict. Where the article names a number or a path, the comparison carries it (`article`) so
the report shows it beside the measurement. A check without an effect is evidence shown
beside the others, never judged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vaelab.evaluation.evidence import Estimate, difference, is_estimate


@dataclass(frozen=True)
class Check:
    effect: Estimate | None  # measure(a) - measure(b) in this seed; None: shown, not judged
    expect: int  # +1: the article says the effect is positive, -1: negative
    measure: str  # what the effect is, e.g. "VAE NLL − AE NLL"
    unit: str  # of the effect, e.g. "nats"
    sides: dict[str, Estimate] = field(default_factory=dict)  # the two measures compared
    article: str | None = None  # what the article itself reports for this comparison
    shown: dict[str, Any] | None = None  # numbers shown beside it, not judged


Checks = dict[str, Check]

SHARP_MODES = ("ae", "vae", "cvae (no label)", "cvae (true label)")
NINE_MODES = ("ae", "vae", "cvae (no label)")  # the models the article's 4 -> 9 was shown for
VAES = ("vae", "cvae (no label)")  # the CVAE's label-free codes: the fair rival of the AE's
ARTICLE_WALKS = {
    "1to0": "z=4: 1 → 8 → 6 → 0 (2 other digits); z=64: 1 → 0 (none)",
    "3to7": "z=4: 3 → 8 → 9 → 7 (2 other digits); z=64: 3 → 9 → 7 (1)",
}


def _get(tree: Any, *path: str) -> Any:
    """tree[p0][p1]... or None where any step is missing."""
    for key in path:
        if not isinstance(tree, dict) or key not in tree:
            return None
        tree = tree[key]
    return tree


def _by_z(tree: Any) -> list[str]:
    """The keys of a {"<z>": ...} dict in increasing z; none when it is missing."""
    return sorted(tree or {}, key=int)


def _shown_zs(r: dict[str, Any], tree: Any) -> list[str]:
    """The z keys of `tree` among experiment 1's latent sizes (the article showed 4, 16, 64),
    in increasing z."""
    shown = {str(z) for z in _get(r, "reconstruction", "latents") or []}
    return [z for z in _by_z(tree) if z in shown]


def _upper(name: str) -> str:
    kind, _, mode = name.partition(" ")
    return f"{kind.upper()} {mode}".strip()


def compare(
    a: Any, b: Any, expect: int, measure: str, unit: str, names: tuple[str, str], **extra: Any
) -> Check | None:
    """The check `a - b` has the sign `expect`; None when either estimate is missing."""
    if not (is_estimate(a) and is_estimate(b)):
        return None
    sides = {names[0]: a, names[1]: b}
    return Check(difference(a, b), expect, measure, unit, sides, **extra)


def _add(checks: Checks, name: str, check: Check | None) -> None:
    if check is not None:
        checks[name] = check


def claim_1(r: dict[str, Any]) -> Checks:
    """NLL per image falls at each step up in z, for every model and label mode the article
    showed; and fewer test 4s are read as 9 at the largest z than at the smallest. The 4 -> 9
    part is judged for the AE, the VAE and the CVAE without a label, the rows where the
    article saw it; a decoder told the true label 4 was never part of that observation."""
    nll = _get(r, "reconstruction", "evidence", "nll")
    nine = _get(r, "reconstruction", "evidence", "fours_as_nine")
    checks: Checks = {}
    for mode in SHARP_MODES:
        zs = _shown_zs(r, _get(nll, mode))
        for lo, hi in zip(zs, zs[1:], strict=False):
            measure = f"{_upper(mode)} NLL at z={lo} − at z={hi}"
            check = compare(nll[mode][lo], nll[mode][hi], +1, measure, "nats", (lo, hi))
            _add(checks, f"{mode}: NLL falls from z={lo} to z={hi}", check)
    for mode in NINE_MODES:
        zs = _shown_zs(r, _get(nine, mode))
        if len(zs) >= 2:
            lo, hi = zs[0], zs[-1]
            measure = f"{_upper(mode)}: share of test 4s read as 9, z={lo} − z={hi}"
            check = compare(
                nine[mode][lo],
                nine[mode][hi],
                +1,
                measure,
                "share",
                (f"z={lo}", f"z={hi}"),
                article="at small z the 4 came back as a 9",
            )
            _add(checks, f"{mode}: more 4s read as 9 at z={lo} than at z={hi}", check)
    return checks


def claim_2(r: dict[str, Any]) -> Checks:
    """Paired over the same test images: each image's NLL under the VAE (and the CVAE without
    a label) minus its NLL under the AE, at every z of experiment 1."""
    nll = _get(r, "reconstruction", "evidence", "nll") or {}
    checks: Checks = {}
    for z in _shown_zs(r, nll.get("ae")):
        for mode in VAES:
            check = compare(
                _get(nll, mode, z),
                nll["ae"][z],
                -1,
                f"{_upper(mode)} NLL − AE NLL",
                "nats",
                (mode, "ae"),
            )
            _add(checks, f"z={z}: {mode} NLL below the AE's", check)
    return checks


def claim_3(r: dict[str, Any]) -> Checks:
    """Paired per image: the CVAE's NLL with the true label minus with no label and minus with
    a wrong one; and, over every test image of each grid digit, the classifier's probability
    of the grid's wrong label on the reconstruction given it minus given no label (a shift
    toward the label, which the article saw, rather than a win)."""
    nll = _get(r, "reconstruction", "evidence", "nll") or {}
    checks: Checks = {}
    for z in _shown_zs(r, nll.get("cvae (true label)")):
        true = nll["cvae (true label)"][z]
        for other, words in (("no label", "no label"), ("wrong label", "a wrong label")):
            check = compare(
                true,
                _get(nll, f"cvae ({other})", z),
                -1,
                f"CVAE NLL with the true label − with {words}",
                "nats",
                ("true label", other),
            )
            _add(checks, f"z={z}: NLL lower with the true label than with {words}", check)
    for pair, by_z in (_get(r, "reconstruction", "evidence", "pull") or {}).items():
        digit, wrong = pair.split("to")
        for z in _by_z(by_z):
            given = by_z[z]
            check = compare(
                given.get("wrong label"),
                given.get("no label"),
                +1,
                f"P({wrong}) given label {wrong} − given no label",
                "probability",
                (f"given {wrong}", "no label"),
                article="the 4 given label 9 came back as a 9" if pair == "4to9" else None,
            )
            _add(checks, f"z={z}: test {digit}s given label {wrong} lean toward {wrong}", check)
    for z in _by_z(_get(r, "style", "by_latent")):
        entry = r["style"]["by_latent"][z]
        shown = {"read as the label given (mean)": _get(entry, "read_as_given", "mean")}
        checks[f"style, z={z}: codes decoded with each label, read as that label"] = Check(
            None, 0, "", "", shown=shown | {"images": entry.get("images")}
        )
    return checks


def claim_4(r: dict[str, Any]) -> Checks:
    """Over many walks per seed (seeded pairs of test images of the two digits, the same in
    every seed and at every z): the distinct digits read strictly between a walk's ends,
    other than its two digits and what its end frames read as (a misread end is not a digit
    passed), at the smallest z minus at the largest. The article's own path is shown beside."""
    others = _get(r, "interpolation", "evidence", "others") or {}
    checks: Checks = {}
    for name, by_z in others.items():
        zs = _by_z(by_z)
        if len(zs) < 2:
            continue
        a, b = name.split("to")
        lo, hi = zs[0], zs[-1]
        paths = _get(r, "interpolation", "walks", name) or {}
        shown = {
            f"z={z} (first pair)": " → ".join(map(str, paths[z]["path"]))
            for z in (lo, hi)
            if "path" in paths.get(z, {})
        }
        check = compare(
            by_z[lo],
            by_z[hi],
            +1,
            f"other digits passed, z={lo} − z={hi}",
            "digits",
            (f"z={lo}", f"z={hi}"),
            article=ARTICLE_WALKS.get(name),
            shown=shown or None,
        )
        _add(checks, f"{a} → {b}: more other digits passed at z={lo} than at z={hi}", check)
    return checks


def claim_5(r: dict[str, Any]) -> Checks:
    """How far each cloud's centre sits from the origin in units of the cloud's own size (its
    RMS distance from its centre): the AE's offset minus the VAE's (and the CVAE's). Relative,
    as the article's point is (the AE cloud sits off the origin, the VAE's around it); no
    fixed radius, and no prior's radius for the AE, which has none."""
    offset = _get(r, "latent", "evidence", "offset") or {}
    checks: Checks = {}
    for name in VAES:
        check = compare(
            offset.get("ae"),
            offset.get(name),
            +1,
            f"AE centre offset − {_upper(name)} centre offset",
            "cloud radii",
            ("ae", name),
            article="AE centred around (-10, -10), VAE and CVAE near 0",
        )
        _add(checks, f"ae centre farther off the origin than {name}'s", check)
    return checks


def claim_6(r: dict[str, Any]) -> Checks:
    """Paired over the same test images: whether a 10-nearest-neighbour classifier (5-fold,
    on each model's whitened z=2 codes, unchanged by any invertible linear map) names each
    image's digit, AE minus VAE (and CVAE without a label)."""
    knn = _get(r, "latent", "evidence", "knn") or {}
    checks: Checks = {}
    for name in VAES:
        check = compare(
            knn.get("ae"),
            knn.get(name),
            +1,
            f"AE kNN accuracy − {_upper(name)}'s",
            "accuracy",
            ("ae", name),
        )
        _add(checks, f"ae separates digits better than {name}", check)
    return checks


def _v(r: dict[str, Any], z: str, name: str) -> Any:
    return _get(r, "clustering", "evidence", "v_measure", z, name)


def claim_7(r: dict[str, Any]) -> Checks:
    """V-measure of each model's codes, averaged over its k-means restarts (restarts are the
    instrument's noise, not replicates): at z <= 4 the AE's minus the VAE's and CVAE's, at
    z >= 16 theirs minus the AE's. The seeds and the test images carry the uncertainty."""
    checks: Checks = {}
    for z in _by_z(_get(r, "clustering", "evidence", "v_measure")):
        if 4 < int(z) < 16:  # the article spoke of 4, 16 and 64
            continue
        for name in VAES:
            ae, other = _v(r, z, "ae"), _v(r, z, name)
            if int(z) <= 4:
                check = compare(
                    ae, other, +1, f"AE V-measure − {_upper(name)}'s", "V-measure", ("ae", name)
                )
                _add(checks, f"z={z}: ae scores higher than {name}", check)
            else:
                check = compare(
                    other, ae, +1, f"{_upper(name)} V-measure − AE's", "V-measure", (name, "ae")
                )
                _add(checks, f"z={z}: {name} scores higher than ae", check)
    return checks


def claim_8(r: dict[str, Any]) -> Checks:
    """At every z of experiment 4: the V-measure of the CVAE's codes (encoded without the
    label) minus the VAE's, each averaged over its k-means restarts."""
    checks: Checks = {}
    for z in _by_z(_get(r, "clustering", "evidence", "v_measure")):
        check = compare(
            _v(r, z, "cvae (no label)"),
            _v(r, z, "vae"),
            +1,
            "CVAE V-measure − VAE's",
            "V-measure",
            ("cvae (no label)", "vae"),
        )
        _add(checks, f"z={z}: cvae (no label) scores higher than vae", check)
    return checks


@dataclass(frozen=True)
class Rule:
    number: int
    text: str  # the article's claim in plain words
    rule: str  # how each seed's comparisons are computed
    checks: Callable[[dict[str, Any]], Checks]


RULES = (
    Rule(
        1,
        'Larger z reconstructs more sharply; at small z a "4" tends to come back as a "9".',
        "For AE, VAE and CVAE (no label, true label): each test image's NLL at each z of "
        "experiment 1 minus at the next larger z (positive: sharper with z). For AE, VAE and "
        "CVAE without a label, the share of test 4s the digit classifier reads as 9 at the "
        "smallest z minus at the largest.",
        claim_1,
    ),
    Rule(
        2,
        "VAE and CVAE reconstruct more cleanly than the AE.",
        "At every z of experiment 1, each test image's NLL under the VAE and under the CVAE "
        "without a label minus its NLL under the AE (negative: cleaner than the AE).",
        claim_2,
    ),
    Rule(
        3,
        "The CVAE reconstructs best with the true label; with a wrong label the output "
        "leans toward that label.",
        "At every z: each test image's NLL under the CVAE given its true label minus given no "
        "label, and minus given a wrong label (negative); and over every test image of each "
        "grid digit (the article's 4 given 9 and 2 given 7), the classifier's probability of "
        "that wrong label on the reconstruction given it minus given no label (positive: a "
        "lean, not a win). Experiment 'style', when run, is shown beside, not judged.",
        claim_3,
    ),
    Rule(
        4,
        "Smaller z makes the interpolation pass through more other digits "
        "(z=4: 1 -> 8 -> 6 -> 0; z=64: 1 -> 0).",
        "Over seeded pairs of test images of each walk's two digits, the same pairs in every "
        "seed and at every z: the distinct digits the classifier reads strictly inside a walk, "
        "other than its two digits and its end frames' readings, at the smallest z minus at "
        "the largest (positive). The article's paths are shown beside.",
        claim_4,
    ),
    Rule(
        5,
        "AE latents sit far from the origin (around (-10, -10)); VAE and CVAE latents are "
        "centred near 0.",
        "At z = 2, each cloud's centre offset: the distance of its mean code from the origin "
        "in units of the cloud's own RMS radius about that mean. The AE's offset minus the "
        "VAE's and minus the CVAE's (no label) (positive).",
        claim_5,
    ),
    Rule(
        6,
        "At z=2 the AE separates digits better than the VAE and CVAE.",
        "At z = 2, per test image: does a 10-nearest-neighbour classifier (5-fold, on each "
        "model's whitened codes: unchanged by any invertible linear map, so no model's latent "
        "scale counts) name its digit? The AE's accuracy minus the VAE's and the CVAE's "
        "(no label), paired over the same images (positive).",
        claim_6,
    ),
    Rule(
        7,
        "Clustering: at z=4 the AE scores higher; at z=16 and 64 the VAE and CVAE score "
        "higher than the AE.",
        "V-measure of k-means on each model's test codes, averaged over its restarts: at z <= 4 "
        "the AE's minus the VAE's and the CVAE's (no label); at z >= 16 theirs minus the AE's "
        "(positive).",
        claim_7,
    ),
    Rule(
        8,
        "The CVAE clusters better than the VAE.",
        "At every z of experiment 4, the V-measure of k-means on the CVAE's codes (encoded "
        "without the label) minus on the VAE's, each averaged over its restarts (positive).",
        claim_8,
    ),
)
