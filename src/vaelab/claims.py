"""The article's eight claims, each judged from the study's numbers by a stated rule.

Every rule returns a `Claim` with the numbers it looked at and a verdict: "holds",
"does not hold", "mixed" (some of its comparisons agree, some do not) or "not measured"
(the study did not produce the numbers, e.g. a model or latent size was left out).
A claim made of several comparisons holds only if all of them agree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

HOLDS, FAILS, MIXED, MISSING = "holds", "does not hold", "mixed", "not measured"


@dataclass(frozen=True)
class Claim:
    number: int
    text: str  # the article's claim in plain words
    rule: str  # how the verdict is computed
    evidence: dict[str, Any]  # the numbers compared
    verdict: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def verdict(checks: list[bool]) -> str:
    """All comparisons agree: holds; none: does not hold; some: mixed; no data: not measured."""
    if not checks:
        return MISSING
    if all(checks):
        return HOLDS
    return FAILS if not any(checks) else MIXED


def _get(tree: dict[str, Any], *path: str) -> Any:
    """tree[p0][p1]... or None where any step is missing."""
    for key in path:
        if not isinstance(tree, dict) or key not in tree:
            return None
        tree = tree[key]
    return tree


def _recon(results: dict[str, Any], mode: str, z: int, key: str) -> float | None:
    return _get(results, "reconstruction", "table", mode, str(z), key)


def _v_measure(results: dict[str, Any], row: str, z: int) -> float | None:
    return _get(results, "clustering", "by_latent", str(z), row, "v_measure", "mean")


def _latents(results: dict[str, Any]) -> list[int]:
    return list(_get(results, "reconstruction", "latents") or [])


def claim_1(results: dict[str, Any]) -> Claim:
    """Larger z reconstructs more sharply; at small z a 4 tends to come back as a 9."""
    zs = _latents(results)
    evidence: dict[str, Any] = {"nll": {}, "fours_read_as_nine": {}}
    checks = []
    for mode in ("ae", "vae", "cvae (no label)", "cvae (true label)"):
        nll = [_recon(results, mode, z, "nll") for z in zs]
        nines = [_recon(results, mode, z, "fours_read_as_nine") for z in zs]
        if len(zs) >= 2 and None not in nll:
            evidence["nll"][mode] = dict(zip(map(str, zs), nll, strict=True))
            checks.append(all(a > b for a, b in zip(nll, nll[1:], strict=False)))
        if len(zs) >= 2 and None not in (nines[0], nines[-1]):
            evidence["fours_read_as_nine"][mode] = {str(zs[0]): nines[0], str(zs[-1]): nines[-1]}
            checks.append(nines[0] > nines[-1])
    return Claim(
        1,
        'Larger z reconstructs more sharply; at small z a "4" tends to come back as a "9".',
        "For each of AE, VAE, CVAE (no label, true label): the test NLL falls at every step "
        "up in z, and the share of test 4s whose reconstruction the classifier reads as 9 "
        "is larger at the smallest z than at the largest.",
        evidence,
        verdict(checks),
    )


def claim_2(results: dict[str, Any]) -> Claim:
    evidence, checks = {}, []
    for z in _latents(results):
        ae = _recon(results, "ae", z, "nll")
        for mode in ("vae", "cvae (no label)"):
            other = _recon(results, mode, z, "nll")
            if ae is not None and other is not None:
                evidence[f"z={z}: {mode} vs ae"] = [other, ae]
                checks.append(other < ae)
    return Claim(
        2,
        "VAE and CVAE reconstruct more cleanly than the AE.",
        "At every z of experiment 1, the test reconstruction NLL of the VAE and of the "
        "CVAE without a label is below the AE's.",
        evidence,
        verdict(checks),
    )


def claim_3(results: dict[str, Any]) -> Claim:
    evidence, checks = {}, []
    for z in _latents(results):
        true = _recon(results, "cvae (true label)", z, "nll")
        none = _recon(results, "cvae (no label)", z, "nll")
        wrong = _recon(results, "cvae (wrong label)", z, "nll")
        lean = _recon(results, "cvae (wrong label)", z, "read_as_given_label")
        if None in (true, none, wrong, lean):
            continue
        evidence[f"z={z}"] = {"nll true/none/wrong": [true, none, wrong], "wrong label wins": lean}
        checks += [true < none and true < wrong, lean > 0.5]
    return Claim(
        3,
        "The CVAE reconstructs best with the true label; with a wrong label the "
        "output leans toward that label.",
        "At every z: the CVAE's NLL with the true label is below its NLL with no label and "
        "with a wrong label, and the classifier reads more than half of the wrong-label "
        "reconstructions as the wrong label.",
        evidence,
        verdict(checks),
    )


def claim_4(results: dict[str, Any]) -> Claim:
    walks = _get(results, "interpolation", "walks") or {}
    evidence, checks = {}, []
    for name, by_z in walks.items():
        zs = sorted(by_z, key=int)
        if len(zs) < 2:
            continue
        low, high = by_z[zs[0]], by_z[zs[-1]]
        evidence[name] = {f"z={z}": by_z[z]["path"] for z in zs}
        checks.append(low["changes"] > high["changes"])
    return Claim(
        4,
        "Smaller z makes the interpolation pass through more other digits "
        "(z=4: 1 -> 8 -> 6 -> 0; z=64: 1 -> 0).",
        "For each walk, the classifier's reading changes more often along the walk at the "
        "smallest z than at the largest.",
        evidence,
        verdict(checks),
    )


def claim_5(results: dict[str, Any]) -> Claim:
    stats = _get(results, "latent", "models") or {}
    ae = stats.get("ae")
    evidence, checks = {}, []
    if ae is not None:
        evidence["ae"] = {"centre_norm": ae["centre_norm"], "mean_radius": ae["mean_radius"]}
        for name in ("vae", "cvae (no label)"):
            if name in stats:
                s = stats[name]
                evidence[name] = {"centre_norm": s["centre_norm"], "mean_radius": s["mean_radius"]}
                checks += [s["centre_norm"] < 0.5, ae["mean_radius"] > 2 * s["mean_radius"]]
    return Claim(
        5,
        "AE latents sit far from the origin (around (-10, -10)); VAE and CVAE "
        "latents are centred near 0.",
        "The VAE's and CVAE's (no label) latent centre lies within 0.5 of the origin, and "
        "the AE's latents lie on average more than twice as far from the origin as theirs.",
        evidence,
        verdict(checks),
    )


def claim_6(results: dict[str, Any]) -> Claim:
    stats = _get(results, "latent", "models") or {}
    evidence, checks = {}, []
    if "ae" in stats:
        evidence["ae"] = stats["ae"]["knn_accuracy"]
        for name in ("vae", "cvae (no label)"):
            if name in stats:
                evidence[name] = stats[name]["knn_accuracy"]
                checks.append(stats["ae"]["knn_accuracy"] > stats[name]["knn_accuracy"])
    return Claim(
        6,
        "At z=2 the AE separates digits better than the VAE and CVAE.",
        "The 10-nearest-neighbour digit accuracy on the 2-D test latents (5-fold, scale "
        "free) is higher for the AE than for the VAE and the CVAE (no label).",
        evidence,
        verdict(checks),
    )


def claim_7(results: dict[str, Any]) -> Claim:
    evidence, checks = {}, []
    for z in _latents(results):
        ae = _v_measure(results, "ae", z)
        for row in ("vae", "cvae (no label)"):
            other = _v_measure(results, row, z)
            if ae is None or other is None:
                continue
            evidence[f"z={z}: {row} vs ae"] = [other, ae]
            checks.append(ae > other if z <= 4 else other > ae)
    return Claim(
        7,
        "Clustering: at z=4 the AE scores higher; at z=16 and 64 the VAE and CVAE "
        "score higher than the AE.",
        "Mean V-measure over the k-means runs: at z <= 4 the AE's beats the VAE's and the "
        "CVAE's (no label); above z = 4 both beat the AE's.",
        evidence,
        verdict(checks),
    )


def claim_8(results: dict[str, Any]) -> Claim:
    evidence, checks = {}, []
    for z in _latents(results):
        vae, cvae = _v_measure(results, "vae", z), _v_measure(results, "cvae (no label)", z)
        if vae is not None and cvae is not None:
            evidence[f"z={z}"] = {"cvae (no label)": cvae, "vae": vae}
            checks.append(cvae > vae)
    return Claim(
        8,
        "The CVAE clusters better than the VAE.",
        "At every z of experiment 4, the CVAE's (latents encoded without the label) mean "
        "V-measure is above the VAE's.",
        evidence,
        verdict(checks),
    )


RULES: tuple[Callable[[dict[str, Any]], Claim], ...] = (
    claim_1,
    claim_2,
    claim_3,
    claim_4,
    claim_5,
    claim_6,
    claim_7,
    claim_8,
)


def judge_claims(results: dict[str, Any]) -> list[Claim]:
    """Every claim's verdict; `results` maps experiment names to their numbers."""
    return [rule(results) for rule in RULES]
