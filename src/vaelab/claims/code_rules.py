"""The rules of claims 5 to 8, on the codes: where they sit, how they separate, how they
cluster. Each is applied to ONE seed's numbers, as in `vaelab.claims.rules`."""

from __future__ import annotations

from vaelab.claims.checks import (
    ACCURACY,
    RADII,
    V_MEASURE,
    Checks,
    add,
    by_z,
    compare,
    near_zero,
    upper,
)
from vaelab.evaluation.evidence import Estimate
from vaelab.evaluation.measured import Measured

VAES = ("vae", "cvae (no label)")  # the CVAE's label-free codes: the fair rival of the AE's


def claim_5(m: Measured) -> Checks:
    """How far each cloud's centre sits from the origin in units of the cloud's own size (its
    RMS distance from its centre; no fixed radius, and no prior's radius for the AE, which
    has none): the VAE's and the CVAE's (no label) near 0 in their own right, and the AE's
    offset minus each of theirs."""
    offset = m.latent.offset
    checks: Checks = {}
    article = "AE centred around (-10, -10), VAE and CVAE near 0"
    for name in VAES:
        check = near_zero(
            offset.get(name), f"{upper(name)} centre offset", RADII, name, article=article
        )
        add(checks, f"{name} centre near the origin", check)
    for name in VAES:
        check = compare(
            offset.get("ae"),
            offset.get(name),
            +1,
            f"AE centre offset − {upper(name)} centre offset",
            RADII,
            ("ae", name),
            article=article,
        )
        add(checks, f"ae centre farther off the origin than {name}'s", check)
    return checks


def claim_6(m: Measured) -> Checks:
    """Paired over the same test images: whether a 10-nearest-neighbour classifier (5-fold,
    on each model's whitened z=2 codes, unchanged by any invertible linear map) names each
    image's digit, AE minus VAE (and CVAE without a label)."""
    knn = m.latent.knn
    checks: Checks = {}
    for name in VAES:
        check = compare(
            knn.get("ae"),
            knn.get(name),
            +1,
            f"AE kNN accuracy − {upper(name)}'s",
            ACCURACY,
            ("ae", name),
        )
        add(checks, f"ae separates digits better than {name}", check)
    return checks


def _v(m: Measured, z: str, name: str) -> Estimate | None:
    return m.clustering.v_measure.get(z, {}).get(name)


def claim_7(m: Measured) -> Checks:
    """V-measure of each model's codes, averaged over its k-means restarts (restarts are the
    instrument's noise, not replicates): at z <= 4 the AE's minus the VAE's and CVAE's, at
    z >= 16 theirs minus the AE's. The seeds and the test images carry the uncertainty."""
    checks: Checks = {}
    for z in by_z(m.clustering.v_measure):
        if 4 < int(z) < 16:  # the article spoke of 4, 16 and 64
            continue
        for name in VAES:
            ae, other = _v(m, z, "ae"), _v(m, z, name)
            if int(z) <= 4:
                measure = f"AE V-measure − {upper(name)}'s"
                check = compare(ae, other, +1, measure, V_MEASURE, ("ae", name))
                add(checks, f"z={z}: ae scores higher than {name}", check)
            else:
                measure = f"{upper(name)} V-measure − AE's"
                check = compare(other, ae, +1, measure, V_MEASURE, (name, "ae"))
                add(checks, f"z={z}: {name} scores higher than ae", check)
    return checks


def claim_8(m: Measured) -> Checks:
    """At every z of experiment 4: the V-measure of the CVAE's codes (encoded without the
    label) minus the VAE's, each averaged over its k-means restarts."""
    checks: Checks = {}
    for z in by_z(m.clustering.v_measure):
        check = compare(
            _v(m, z, "cvae (no label)"),
            _v(m, z, "vae"),
            +1,
            "CVAE V-measure − VAE's",
            V_MEASURE,
            ("cvae (no label)", "vae"),
        )
        add(checks, f"z={z}: cvae (no label) scores higher than vae", check)
    return checks
