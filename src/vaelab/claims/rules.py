"""The rules behind the article's eight claims, each applied to ONE seed's numbers.

A rule is a pure function from one seed's experiment numbers, typed and read by attribute
(`vaelab.evaluation.measured.Measured`), to named checks (`vaelab.claims.checks.Check`): an
effect (mostly a difference of two estimates, with its test-image resamples, see
`vaelab.evaluation.evidence`), what the article predicts for it (a sign, or a value near
zero), and its unit with that unit's smallest effect of interest. A rule leaves out a
comparison whose numbers the seed lacks (an experiment that did not run, a z not trained).
`vaelab.claims.verdicts` pools each comparison over the seeds and turns the outcomes into a
verdict. Where the article names a number or a path, the comparison carries it (`article`) so
the report shows it beside the measurement. A check without an effect is evidence shown
beside the others, never judged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from vaelab.claims.checks import (
    ACCURACY,
    DIGITS,
    NATS,
    PROBABILITY,
    RADII,
    SHARE,
    V_MEASURE,
    Check,
    Checks,
    Unit,
    add,
    by_z,
    compare,
    shown_zs,
    upper,
)
from vaelab.claims.code_rules import VAES, claim_5, claim_6, claim_7, claim_8
from vaelab.evaluation.measured import DigitPair, Measured

SHARP_MODES = ("ae", "vae", "cvae (no label)", "cvae (true label)")
LABEL_FREE = ("ae", "vae", "cvae (no label)")  # the models that read the image alone
ARTICLE_WALKS = {
    DigitPair(1, 0): "z=4: 1 → 8 → 6 → 0 (2 other digits); z=64: 1 → 0 (none)",
    DigitPair(3, 7): "z=4: 3 → 8 → 9 → 7 (2 other digits); z=64: 3 → 9 → 7 (1)",
}
ARTICLE_PULL = DigitPair(4, 9)  # the article's example: a 4 given label 9 came back as a 9


def claim_1(m: Measured) -> Checks:
    """NLL per image falls at each step up in z, for every model and label mode the article
    showed; and, for each model that reads the image alone, more reconstructions are read
    as another digit than their own at the smallest z than at each larger z. The article's
    example (test 4s read as 9) is shown beside, not judged: it is one case of the second."""
    recon = m.reconstruction
    checks: Checks = {}
    for mode in SHARP_MODES:
        zs = shown_zs(m, recon.nll.get(mode))
        for lo, hi in zip(zs, zs[1:], strict=False):
            measure = f"{upper(mode)} NLL at z={lo} − at z={hi}"
            check = compare(recon.nll[mode][lo], recon.nll[mode][hi], +1, measure, NATS, (lo, hi))
            add(checks, f"{mode}: NLL falls from z={lo} to z={hi}", check)
    for mode in LABEL_FREE:
        misread = recon.misread.get(mode, {})
        zs = shown_zs(m, misread)
        for hi in zs[1:]:
            lo = zs[0]
            check = compare(
                misread[lo],
                misread[hi],
                +1,
                f"{upper(mode)}: share read as another digit, z={lo} − z={hi}",
                SHARE,
                (f"z={lo}", f"z={hi}"),
                article="at small z a reconstruction tends to become another digit",
            )
            add(checks, f"{mode}: more read as another digit at z={lo} than at z={hi}", check)
    for mode in LABEL_FREE:
        nine = recon.fours_as_nine.get(mode, {})
        zs = shown_zs(m, nine)
        if zs:
            shown = {f"z={z}": nine[z]["value"] for z in zs}
            name = f"{mode}: share of test 4s read as 9 (the article's example)"
            checks[name] = Check(None, 0, "", None, shown=shown)
    return checks


def claim_2(m: Measured) -> Checks:
    """Paired over the same test images: each image's NLL under the VAE (and the CVAE without
    a label) minus its NLL under the AE, at every z of experiment 1."""
    nll = m.reconstruction.nll
    checks: Checks = {}
    for z in shown_zs(m, nll.get("ae")):
        for mode in VAES:
            check = compare(
                nll.get(mode, {}).get(z),
                nll["ae"][z],
                -1,
                f"{upper(mode)} NLL − AE NLL",
                NATS,
                (mode, "ae"),
            )
            add(checks, f"z={z}: {mode} NLL below the AE's", check)
    return checks


def claim_3(m: Measured) -> Checks:
    """Paired per image: the CVAE's NLL with the true label minus with no label and minus with
    a wrong one. Over every test image of each grid digit (the article's 4 given 9, 2 given
    7): the classifier's probability of the wrong label on the reconstruction given it minus
    given no label (a lean), and the share of reconstructions given the wrong label read as
    that label minus read as the image's own digit (the label wins, as the article's 4 became
    a 9)."""
    recon = m.reconstruction
    nll = recon.nll
    checks: Checks = {}
    for z in shown_zs(m, nll.get("cvae (true label)")):
        true = nll["cvae (true label)"][z]
        for other, words in (("no label", "no label"), ("wrong label", "a wrong label")):
            check = compare(
                true,
                nll.get(f"cvae ({other})", {}).get(z),
                -1,
                f"CVAE NLL with the true label − with {words}",
                NATS,
                ("true label", other),
            )
            add(checks, f"z={z}: NLL lower with the true label than with {words}", check)
    for pair, pulls in recon.pull.items():
        digit, wrong = pair.first, pair.second
        article = "the 4 given label 9 came back as a 9" if pair == ARTICLE_PULL else None
        for z in by_z(pulls):
            check = compare(
                pulls[z].wrong_label,
                pulls[z].no_label,
                +1,
                f"P({wrong}) given label {wrong} − given no label",
                PROBABILITY,
                (f"given {wrong}", "no label"),
                article=article,
            )
            add(checks, f"z={z}: test {digit}s given label {wrong} lean toward {wrong}", check)
    for pair, readings in recon.wins.items():
        digit, wrong = pair.first, pair.second
        article = "the 4 given label 9 came back as a 9" if pair == ARTICLE_PULL else None
        for z in by_z(readings):
            check = compare(
                readings[z].read_as_label,
                readings[z].read_as_digit,
                +1,
                f"given label {wrong}: share read as {wrong} − read as {digit}",
                SHARE,
                (f"read as {wrong}", f"read as {digit}"),
                article=article,
            )
            add(checks, f"z={z}: test {digit}s given label {wrong} come back as {wrong}", check)
    for z in by_z(m.style):
        style = m.style[z]
        shown = {"read as the label given (mean)": style.read_as_given, "images": style.images}
        checks[f"style, z={z}: codes decoded with each label, read as that label"] = Check(
            None, 0, "", None, shown=shown
        )
    return checks


def claim_4(m: Measured) -> Checks:
    """Over many walks per seed (seeded pairs of test images of the two digits, the same in
    every seed and at every z): the distinct digits read strictly between a walk's ends,
    other than its two digits and what its end frames read as (a misread end is not a digit
    passed), at each z minus at the next larger z: the smaller z, the more digits, at every
    step. The article's own path is shown beside."""
    checks: Checks = {}
    for pair, zs_of in m.interpolation.others.items():
        zs = by_z(zs_of)
        a, b = pair.first, pair.second
        paths = m.first_walks.get(pair, {})
        shown = {f"z={z} (first pair)": " → ".join(map(str, paths[z])) for z in zs if z in paths}
        for lo, hi in zip(zs, zs[1:], strict=False):
            check = compare(
                zs_of[lo],
                zs_of[hi],
                +1,
                f"other digits passed, z={lo} − z={hi}",
                DIGITS,
                (f"z={lo}", f"z={hi}"),
                article=ARTICLE_WALKS.get(pair),
                shown=shown or None,
            )
            add(checks, f"{a} → {b}: more other digits passed at z={lo} than at z={hi}", check)
    return checks


@dataclass(frozen=True)
class Rule:
    number: int
    text: str  # the article's claim in plain words
    rule: str  # how each seed's comparisons are computed
    checks: Callable[[Measured], Checks]
    units: tuple[Unit, ...]  # the units its comparisons are in, each with its margin


RULES = (
    Rule(
        1,
        "Larger z reconstructs more sharply; at small z a reconstruction tends to become "
        'another digit (the article\'s example: a "4" comes back as a "9").',
        "For AE, VAE and CVAE (no label, true label): each test image's NLL at each z of "
        "experiment 1 minus at the next larger z (positive: sharper with z). For AE, VAE and "
        "CVAE without a label: the share of test reconstructions the digit classifier reads "
        "as another digit than the image's, at the smallest z minus at each larger z "
        "(positive). The share of test 4s read as 9 is shown beside.",
        claim_1,
        (NATS, SHARE),
    ),
    Rule(
        2,
        "VAE and CVAE reconstruct more cleanly than the AE.",
        "At every z of experiment 1, each test image's NLL under the VAE and under the CVAE "
        "without a label minus its NLL under the AE (negative: cleaner than the AE).",
        claim_2,
        (NATS,),
    ),
    Rule(
        3,
        "The CVAE reconstructs best with the true label; with a wrong label the output "
        "leans toward that label (the article's 4 given label 9 came back as a 9).",
        "At every z: each test image's NLL under the CVAE given its true label minus given no "
        "label, and minus given a wrong label (negative). Over every test image of each grid "
        "digit (the article's 4 given 9 and 2 given 7): the classifier's probability of that "
        "wrong label on the reconstruction given it minus given no label (positive: a lean), "
        "and the share of reconstructions given it read as that label minus read as the "
        "image's own digit (positive: the label wins). Experiment 'style', when run, is shown "
        "beside, not judged.",
        claim_3,
        (NATS, PROBABILITY, SHARE),
    ),
    Rule(
        4,
        "Smaller z makes the interpolation pass through more other digits "
        "(z=4: 1 -> 8 -> 6 -> 0; z=64: 1 -> 0).",
        "Over seeded pairs of test images of each walk's two digits, the same pairs in every "
        "seed and at every z: the distinct digits the classifier reads strictly inside a walk, "
        "other than its two digits and its end frames' readings, at each z minus at the next "
        "larger z (positive at every step: a trend over z, not only its ends). The article's "
        "paths are shown beside.",
        claim_4,
        (DIGITS,),
    ),
    Rule(
        5,
        "AE latents sit far from the origin (around (-10, -10)); VAE and CVAE latents are "
        "centred near 0.",
        "At z = 2, each cloud's centre offset: the distance of its mean code from the origin "
        "in units of the cloud's own RMS radius about that mean. The VAE's and the CVAE's "
        "(no label) offsets near 0 (within the margin), and the AE's offset minus each of "
        "theirs (positive).",
        claim_5,
        (RADII,),
    ),
    Rule(
        6,
        "At z=2 the AE separates digits better than the VAE and CVAE.",
        "At z = 2, per test image: does a 10-nearest-neighbour classifier (5-fold, on each "
        "model's whitened codes: unchanged by any invertible linear map, so no model's latent "
        "scale counts) name its digit? The AE's accuracy minus the VAE's and the CVAE's "
        "(no label), paired over the same images (positive).",
        claim_6,
        (ACCURACY,),
    ),
    Rule(
        7,
        "Clustering: at z=4 the AE scores higher; at z=16 and 64 the VAE and CVAE score "
        "higher than the AE.",
        "V-measure of k-means on each model's test codes, averaged over its restarts: at z <= 4 "
        "the AE's minus the VAE's and the CVAE's (no label); at z >= 16 theirs minus the AE's "
        "(positive).",
        claim_7,
        (V_MEASURE,),
    ),
    Rule(
        8,
        "The CVAE clusters better than the VAE.",
        "At every z of experiment 4, the V-measure of k-means on the CVAE's codes (encoded "
        "without the label) minus on the VAE's, each averaged over its restarts (positive).",
        claim_8,
        (V_MEASURE,),
    ),
)
