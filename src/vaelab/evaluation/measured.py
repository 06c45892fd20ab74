"""What the claims read of one seed's experiments, typed: each claimed experiment's estimates
(`vaelab.evaluation.evidence`) by model or label mode, digit pair and latent size.

An experiment makes its record (`ReconstructionEvidence`, ...) and keeps the record's
`to_json()` under "evidence" in its numbers; the claims read one seed's numbers back with
`Measured.read` and take every number by attribute. The JSON names are the fields' names
(an underscore read as a space: `wrong_label` is "wrong label"), so a field renamed on one
side is renamed on both, and a name a record needs but the numbers lack is an error naming
it (`MeasuredError`), never a comparison silently left out. An experiment that did not run
(no numbers) reads as an empty record: the claims then have nothing to compare. A measure an
experiment could not make (no test 4s, no CVAE at that z) is absent from its dict.

Latent sizes stay the JSON's string keys ("4"), so a record's `to_json()` is the layout
results.json has always had; digit pairs are `DigitPair`s, written "4to9".
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from vaelab.core.errors import VaelabError
from vaelab.evaluation.evidence import EVIDENCE, Estimate

ByZ = dict[str, Estimate]  # "<z>" -> estimate
ByName = dict[str, ByZ]  # a model or label mode ("cvae (no label)") -> "<z>" -> estimate
V = TypeVar("V")


class MeasuredError(VaelabError):
    """An experiment's numbers lack a name its record needs (another layout, or damage)."""


@dataclass(frozen=True, order=True)
class DigitPair:
    """Two digits in order: a walk from `first` to `second`, or test `first`s given the
    label `second`."""

    first: int
    second: int

    @property
    def key(self) -> str:
        return f"{self.first}to{self.second}"

    @classmethod
    def parse(cls, key: str) -> DigitPair:
        first, to, second = key.partition("to")
        if not (to and first.isdigit() and second.isdigit()):
            raise MeasuredError(f"{key!r} is not a digit pair such as '4to9'")
        return cls(int(first), int(second))

    def __str__(self) -> str:
        return self.key


def _json_name(name: str) -> str:
    return name.replace("_", " ")


def _need(tree: Any, name: str, where: str) -> Any:
    if not isinstance(tree, Mapping) or name not in tree:
        raise MeasuredError(f"the {where} numbers lack {name!r}")
    return tree[name]


@dataclass(frozen=True)
class LabelPull:
    """One CVAE's reconstructions of the test images of one digit given three labels: per
    image, the classifier's probability of the wrong label, as an estimate per label given."""

    wrong_label: Estimate
    no_label: Estimate
    true_label: Estimate


@dataclass(frozen=True)
class WrongLabelReading:
    """Given the wrong label: the share read as that label, and as the image's own digit."""

    read_as_label: Estimate
    read_as_digit: Estimate


R = TypeVar("R", LabelPull, WrongLabelReading)


def _flat_to_json(record: Any) -> dict[str, Any]:
    return {_json_name(f.name): getattr(record, f.name) for f in dataclasses.fields(record)}


def _flat_read(cls: type[R], tree: Any, where: str) -> R:
    names = [f.name for f in dataclasses.fields(cls)]
    return cls(**{n: _need(tree, _json_name(n), where) for n in names})


def _by_pair(tree: Mapping[str, Any], value: Callable[[Any], V]) -> dict[DigitPair, dict[str, V]]:
    return {
        DigitPair.parse(key): {z: value(v) for z, v in by_z.items()} for key, by_z in tree.items()
    }


def _pair_keys(
    tree: Mapping[DigitPair, dict[str, Any]], value: Callable[[Any], Any]
) -> dict[str, dict[str, Any]]:
    return {pair.key: {z: value(v) for z, v in by_z.items()} for pair, by_z in tree.items()}


@dataclass(frozen=True)
class ReconstructionEvidence:
    """Experiment 1 on the test images, per label mode and z: the NLL per image, whether the
    classifier reads the reconstruction as another digit, and over the test 4s whether it reads
    a 9; per grid digit and wrong label, the CVAE's pull toward that label."""

    nll: ByName = field(default_factory=dict)
    misread: ByName = field(default_factory=dict)
    fours_as_nine: ByName = field(default_factory=dict)
    pull: dict[DigitPair, dict[str, LabelPull]] = field(default_factory=dict)
    wins: dict[DigitPair, dict[str, WrongLabelReading]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "nll": self.nll,
            "misread": self.misread,
            "fours_as_nine": self.fours_as_nine,
            "pull": _pair_keys(self.pull, _flat_to_json),
            "wins": _pair_keys(self.wins, _flat_to_json),
        }

    @classmethod
    def read(cls, tree: Any) -> ReconstructionEvidence:
        where = "reconstruction evidence"
        return cls(
            nll=_need(tree, "nll", where),
            misread=_need(tree, "misread", where),
            fours_as_nine=_need(tree, "fours_as_nine", where),
            pull=_by_pair(_need(tree, "pull", where), lambda t: _flat_read(LabelPull, t, where)),
            wins=_by_pair(
                _need(tree, "wins", where), lambda t: _flat_read(WrongLabelReading, t, where)
            ),
        )


@dataclass(frozen=True)
class InterpolationEvidence:
    """Experiment 2: per walk and z, the other digits a walk passes, over the seeded pairs."""

    others: dict[DigitPair, ByZ] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"others": {pair.key: by_z for pair, by_z in self.others.items()}}

    @classmethod
    def read(cls, tree: Any) -> InterpolationEvidence:
        others = _need(tree, "others", "interpolation evidence")
        return cls({DigitPair.parse(key): by_z for key, by_z in others.items()})


@dataclass(frozen=True)
class LatentEvidence:
    """Experiment 3 at z = 2, per model: the cloud's centre offset in its own radii, and
    whether a kNN classifier on the whitened codes names each test image's digit."""

    offset: dict[str, Estimate] = field(default_factory=dict)
    knn: dict[str, Estimate] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"offset": self.offset, "knn": self.knn}

    @classmethod
    def read(cls, tree: Any) -> LatentEvidence:
        where = "latent evidence"
        return cls(_need(tree, "offset", where), _need(tree, "knn", where))


@dataclass(frozen=True)
class ClusteringEvidence:
    """Experiment 4: per z and model, the V-measure of k-means averaged over its restarts."""

    v_measure: dict[str, dict[str, Estimate]] = field(default_factory=dict)  # "<z>" -> name ->

    def to_json(self) -> dict[str, Any]:
        return {"v_measure": self.v_measure}

    @classmethod
    def read(cls, tree: Any) -> ClusteringEvidence:
        return cls(_need(tree, "v_measure", "clustering evidence"))


@dataclass(frozen=True)
class StyleReading:
    """The style experiment at one z: the share of decodes read as the label given (mean
    over the images), and how many images were decoded with every label."""

    read_as_given: float | None
    images: int


@dataclass(frozen=True)
class Measured:
    """One seed's numbers as the claims read them."""

    reconstruction: ReconstructionEvidence = field(default_factory=ReconstructionEvidence)
    shown_latents: tuple[str, ...] = ()  # experiment 1's latent sizes, "<z>"
    interpolation: InterpolationEvidence = field(default_factory=InterpolationEvidence)
    first_walks: dict[DigitPair, dict[str, list[int]]] = field(default_factory=dict)  # digits
    latent: LatentEvidence = field(default_factory=LatentEvidence)
    clustering: ClusteringEvidence = field(default_factory=ClusteringEvidence)
    style: dict[str, StyleReading] = field(default_factory=dict)  # "<z>" ->

    @classmethod
    def read(cls, numbers: Mapping[str, Any] | None) -> Measured:
        """{experiment name: its numbers} of one seed; an experiment with no numbers did not
        run. Raises `MeasuredError` where a present experiment lacks a name."""
        numbers = numbers or {}
        found: dict[str, Any] = {}
        recon = numbers.get("reconstruction")
        if recon:
            found["reconstruction"] = ReconstructionEvidence.read(
                _need(recon, EVIDENCE, "reconstruction")
            )
            latents = _need(recon, "latents", "reconstruction")
            found["shown_latents"] = tuple(str(z) for z in latents)
        walks = numbers.get("interpolation")
        if walks:
            found["interpolation"] = InterpolationEvidence.read(
                _need(walks, EVIDENCE, "interpolation")
            )
            found["first_walks"] = _by_pair(
                _need(walks, "walks", "interpolation"),
                lambda walk: list(_need(walk, "path", "interpolation walk")),
            )
        codes = numbers.get("latent")
        if codes:
            found["latent"] = LatentEvidence.read(_need(codes, EVIDENCE, "latent"))
        clusters = numbers.get("clustering")
        if clusters:
            found["clustering"] = ClusteringEvidence.read(_need(clusters, EVIDENCE, "clustering"))
        style = numbers.get("style")
        if style:
            found["style"] = {
                z: StyleReading(
                    _need(_need(entry, "read_as_given", "style"), "mean", "style"),
                    _need(entry, "images", "style"),
                )
                for z, entry in _need(style, "by_latent", "style").items()
            }
        return cls(**found)
