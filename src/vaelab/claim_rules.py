"""The rules behind the article's eight claims, each applied to ONE seed's numbers.

A rule is a pure function from one seed's experiment numbers (`{experiment name: numbers}`)
to named comparisons, each a `Check`: its outcome in that seed and the numbers it compared.
A rule leaves out a comparison whose numbers the seed lacks. `vaelab.claims` evaluates every
rule in every seed and turns the outcomes into verdicts. Where the article names a number or
a path, the comparison carries it (`article`) so the report shows it beside the measurement.
A check whose outcome is None is evidence shown beside the comparisons, never judged.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from scipy.stats import chi2

from vaelab.stats import ALPHA, greater, paired_greater


@dataclass(frozen=True)
class Check:
    outcome: bool | None  # does this seed agree with the article? None: shown, not judged
    numbers: dict[str, Any]  # what was compared, JSON-ready
    article: str | None = None  # what the article itself reports for this comparison


Checks = dict[str, Check]

SHARP_MODES = ("ae", "vae", "cvae (no label)", "cvae (true label)")
VAES = ("vae", "cvae (no label)")  # the CVAE's label-free codes: the fair rival of the AE's
NEAR_ORIGIN = 0.5  # prior sd: "centred near 0" for a VAE whose prior is N(0, I)
PRIOR_MASS = 0.99  # "far from the origin": outside the ball holding this much prior mass
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


def _recon(r: dict[str, Any], mode: str, z: int, key: str) -> Any:
    return _get(r, "reconstruction", "table", mode, str(z), key)


def _latents(r: dict[str, Any]) -> list[int]:
    return sorted(int(z) for z in _get(r, "reconstruction", "latents") or [])


def _by_z(tree: Any) -> list[tuple[str, Any]]:
    """The items of a {"<z>": ...} dict in increasing z; none when it is missing."""
    return sorted((tree or {}).items(), key=lambda item: int(item[0]))


def claim_1(r: dict[str, Any]) -> Checks:
    zs, checks = _latents(r), {}
    if len(zs) < 2:
        return checks
    lo, hi = zs[0], zs[-1]
    for mode in SHARP_MODES:
        nll = {f"z={z}": _recon(r, mode, z, "nll") for z in zs}
        if None not in nll.values():
            steps = list(nll.values())
            falls = all(a > b for a, b in zip(steps, steps[1:], strict=False))
            checks[f"{mode}: NLL falls at every step up in z"] = Check(falls, nll)
        nines = {f"z={z}": _recon(r, mode, z, "fours_read_as_nine") for z in (lo, hi)}
        if None not in nines.values():
            more = nines[f"z={lo}"] > nines[f"z={hi}"]
            checks[f"{mode}: more 4s read as 9 at z={lo} than at z={hi}"] = Check(
                more, nines, "at small z the 4 came back as a 9"
            )
    return checks


def claim_2(r: dict[str, Any]) -> Checks:
    checks = {}
    for z in _latents(r):
        ae = _recon(r, "ae", z, "nll")
        for mode in VAES:
            other = _recon(r, mode, z, "nll")
            if ae is not None and other is not None:
                numbers = {f"{mode} NLL": other, "ae NLL": ae}
                checks[f"z={z}: {mode} NLL below the AE's"] = Check(other < ae, numbers)
    return checks


def claim_3(r: dict[str, Any]) -> Checks:
    checks = {}
    for z in _latents(r):
        nll = {m: _recon(r, f"cvae ({m})", z, "nll") for m in ("true label", "no label")}
        nll["wrong label"] = _recon(r, "cvae (wrong label)", z, "nll")
        if None not in nll.values():
            best = nll["true label"] < min(nll["no label"], nll["wrong label"])
            checks[f"z={z}: NLL lowest with the true label"] = Check(best, nll)
    for pair, by_z in (_get(r, "reconstruction", "label_pull") or {}).items():
        digit, wrong = pair.split("to")
        for z in sorted(by_z, key=int):
            if None in (_get(by_z[z], "prob_given", m) for m in ("wrong label", "no label")):
                continue
            checks[f"z={z}: test {digit}s given label {wrong}: P({wrong}) rises over no label"] = (
                _pull_check(by_z[z], pair)
            )
    for z, entry in _by_z(_get(r, "style", "by_latent")):
        read = _get(entry, "read_as_given", "mean")
        checks[f"style, z={z}: codes decoded with each label, read as that label"] = Check(
            None, {"read as the label given (mean)": read, "images": entry.get("images")}
        )
    return checks


def _pull_check(pull: dict[str, Any], pair: str) -> Check:
    """Wilcoxon signed-rank, one-sided: P(wrong label) per image, given it vs no label."""
    given = pull["prob_given"]
    test = paired_greater(given["wrong label"], given["no label"])
    numbers = {
        "mean P, given the label": test["mean_a"],
        "mean P, no label": test["mean_b"],
        "mean P, true label": _get(pull, "mean_prob_given", "true label"),
        "label wins": _get(pull, "read_as_given", "wrong label"),
        "images": pull.get("images"),
        "p (Wilcoxon, one-sided)": test["p"],
    }
    article = "the 4 given label 9 came back as a 9" if pair == "4to9" else None
    return Check(test["shown"], numbers, article)


def _others(path: list[int], a: int, b: int) -> int:
    """Distinct digits read along a walk other than its two ends' digits."""
    return len(set(path) - {a, b})


def claim_4(r: dict[str, Any]) -> Checks:
    checks = {}
    for name, by_z in (_get(r, "interpolation", "walks") or {}).items():
        zs = sorted((z for z in by_z if "path" in by_z[z]), key=int)
        if len(zs) < 2:
            continue
        a, b = (int(d) for d in name.split("to"))
        lo, hi = zs[0], zs[-1]
        others = {z: _others(by_z[z]["path"], a, b) for z in (lo, hi)}
        numbers: dict[str, Any] = {}
        for z in (lo, hi):
            numbers[f"z={z}"] = " → ".join(str(d) for d in by_z[z]["path"])
            numbers[f"z={z} other digits"] = others[z]
        checks[f"{a} → {b}: more other digits passed at z={lo} than at z={hi}"] = Check(
            others[lo] > others[hi], numbers, ARTICLE_WALKS.get(name)
        )
    return checks


def claim_5(r: dict[str, Any]) -> Checks:
    models, z = _get(r, "latent", "models") or {}, _get(r, "latent", "latent")
    checks = {}
    for name in VAES:
        s = models.get(name) or {}
        if "centre_norm" in s:
            numbers = {"centre": s.get("centre"), "distance (prior sd)": s["centre_norm"]}
            near = s["centre_norm"] < NEAR_ORIGIN
            checks[f"{name}: centre within {NEAR_ORIGIN} prior sd of the origin"] = Check(
                near, numbers, "centred near 0"
            )
    ae = models.get("ae") or {}
    if "centre_norm" in ae and z:
        far = math.sqrt(float(chi2.ppf(PRIOR_MASS, df=int(z))))
        numbers = {
            "centre": ae.get("centre"),
            "distance (prior sd)": ae["centre_norm"],
            f"radius holding {PRIOR_MASS:.0%} of N(0, I)": far,
        }
        checks["ae: centre outside the radius holding 99% of the prior's mass"] = Check(
            ae["centre_norm"] > far, numbers, "centre around (-10, -10): 14.1 from the origin"
        )
    return checks


def claim_6(r: dict[str, Any]) -> Checks:
    models, key = _get(r, "latent", "models") or {}, "knn_accuracy_whitened"
    ae, checks = models.get("ae") or {}, {}
    for name in VAES:
        other = models.get(name) or {}
        if key in ae and key in other:
            numbers = {f"ae {key}": ae[key], f"{name} {key}": other[key]}
            for extra in ("silhouette_whitened", "knn_accuracy"):
                numbers |= {f"{m} {extra}": s.get(extra) for m, s in (("ae", ae), (name, other))}
            checks[f"ae separates digits better than {name}"] = Check(ae[key] > other[key], numbers)
    return checks


def _v_runs(rows: dict[str, Any], name: str) -> list[float] | None:
    return _get(rows, name, "v_measure", "values")


def _scores_higher(high: list[float], low: list[float], names: tuple[str, str]) -> Check:
    """One-sided Mann-Whitney U over the k-means runs: does `high` tend to score higher?"""
    test = greater(high, low)
    numbers = {
        f"{names[0]} mean V-measure": test["mean_a"],
        f"{names[1]} mean V-measure": test["mean_b"],
        "runs": [test["n_a"], test["n_b"]],
        "p (Mann-Whitney, one-sided)": test["p"],
    }
    return Check(test["shown"], numbers)


def claim_7(r: dict[str, Any]) -> Checks:
    checks = {}
    for z, rows in _by_z(_get(r, "clustering", "by_latent")):
        ae = _v_runs(rows, "ae")
        for name in VAES:
            other = _v_runs(rows, name)
            if ae is None or other is None or 4 < int(z) < 16:  # the article spoke of 4, 16, 64
                continue
            if int(z) <= 4:
                checks[f"z={z}: ae scores higher than {name}"] = _scores_higher(
                    ae, other, ("ae", name)
                )
            else:
                checks[f"z={z}: {name} scores higher than ae"] = _scores_higher(
                    other, ae, (name, "ae")
                )
    return checks


def claim_8(r: dict[str, Any]) -> Checks:
    checks = {}
    for z, rows in _by_z(_get(r, "clustering", "by_latent")):
        vae, cvae = _v_runs(rows, "vae"), _v_runs(rows, "cvae (no label)")
        if vae is not None and cvae is not None:
            checks[f"z={z}: cvae (no label) scores higher than vae"] = _scores_higher(
                cvae, vae, ("cvae (no label)", "vae")
            )
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
        "For each of AE, VAE, CVAE (no label, true label): the test NLL falls at every step up "
        "in z, and the classifier reads more test 4s' reconstructions as 9 at the smallest z "
        "than at the largest.",
        claim_1,
    ),
    Rule(
        2,
        "VAE and CVAE reconstruct more cleanly than the AE.",
        "At every z of experiment 1, the test NLL of the VAE and of the CVAE without a label "
        "is below the AE's.",
        claim_2,
    ),
    Rule(
        3,
        "The CVAE reconstructs best with the true label; with a wrong label the output "
        "leans toward that label.",
        "At every z: the CVAE's test NLL is lowest with the true label; and over every test "
        "image of each grid digit given its wrong label (the article's 4 given 9 and 2 given "
        "7), the classifier's probability of that label is higher on the reconstruction given "
        "it than on the one given "
        f"no label (a shift, not a win: paired one-sided Wilcoxon test, p < {ALPHA}). "
        "Experiment 'style', when run, is shown as further evidence, not judged.",
        claim_3,
    ),
    Rule(
        4,
        "Smaller z makes the interpolation pass through more other digits "
        "(z=4: 1 -> 8 -> 6 -> 0; z=64: 1 -> 0).",
        "For each walk, the classifier reads more distinct digits other than the walk's two "
        "end digits along the walk at the smallest z than at the largest.",
        claim_4,
    ),
    Rule(
        5,
        "AE latents sit far from the origin (around (-10, -10)); VAE and CVAE latents are "
        "centred near 0.",
        f"In units of the VAE prior's sd (N(0, I)): the VAE's and CVAE's (no label) latent "
        f"centre lies within {NEAR_ORIGIN} of the origin, and the AE's centre lies outside "
        f"the radius that holds {PRIOR_MASS:.0%} of the prior's mass (3.03 at z = 2).",
        claim_5,
    ),
    Rule(
        6,
        "At z=2 the AE separates digits better than the VAE and CVAE.",
        "10-nearest-neighbour digit accuracy (5-fold) on each model's whitened test latents "
        "(decorrelated, unit variance: unchanged by any invertible linear map, so neither "
        "model's latent scale counts) is higher for the AE than for the VAE and the CVAE "
        "(no label). kNN rather than a Fisher ratio: it asks whether a code's neighbours "
        "share its digit, as the eye does on the plot, without assuming Gaussian clusters.",
        claim_6,
    ),
    Rule(
        7,
        "Clustering: at z=4 the AE scores higher; at z=16 and 64 the VAE and CVAE score "
        "higher than the AE.",
        "V-measure of the k-means runs: at z <= 4 the AE's runs score higher than the VAE's "
        "and the CVAE's (no label), at z >= 16 both score higher than the AE's (one-sided "
        f"Mann-Whitney U test over the runs, p < {ALPHA}).",
        claim_7,
    ),
    Rule(
        8,
        "The CVAE clusters better than the VAE.",
        "At every z of experiment 4, the V-measures of k-means runs on the CVAE's codes "
        "(encoded without the label) are higher than on the VAE's (one-sided Mann-Whitney U "
        f"test over the runs, p < {ALPHA}).",
        claim_8,
    ),
)
