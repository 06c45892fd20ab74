"""The claims judged across columns: milestones of training, or (C, k) points of a sweep.

A map holds, per claim and column, the claim's reading (`verdicts`), each comparison's outcome
(`comparisons`) and each comparison's effect and interval (`effects`, the data of the report's
trajectory figure). Every column judges models of the same seeds: neighbouring columns share
those seeds' luck, so a reading that flips between columns whose intervals overlap is that
luck, not training or a setting. And every column is one more look at the same question. So
one column is the verdict (`judged`: the final one, or the article's point) and the others
describe the path to it; the caption says so (`caption`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from vaelab.evaluation.inference import ALPHA, decidable

EFFECT_KEYS = ("effect", "interval", "outcome", "margin", "unit", "expect", "measure")


@dataclass
class ClaimsMap:
    """Claims judged column by column: one type for the milestones of training, the (C, k)
    points of a sweep, or any other column. `columns` says what the columns are (steps and
    labels, or points: JSON-ready, written as they are); `reasons` keeps each claim's reason
    per column where the report shows them."""

    columns: dict[str, Any] = field(default_factory=dict)
    verdicts: dict[str, list[str | None]] = field(default_factory=dict)
    comparisons: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    effects: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    reasons: dict[str, list[str]] | None = None

    def __len__(self) -> int:
        """How many columns the map holds so far."""
        return max((len(row) for row in self.verdicts.values()), default=0)

    def append(self, claims: Sequence[dict[str, Any]]) -> None:
        """Add one column to the right: `claims` (each `Claim.to_dict()`) judged there. A
        claim not judged in earlier columns gets empty cells there."""
        column = len(self)
        for claim in claims:
            number = str(claim["number"])
            for rows, empty in ((self.verdicts, None), (self.comparisons, {}), (self.effects, {})):
                row = rows.setdefault(number, [])
                row.extend(empty if empty is None else {} for _ in range(column - len(row)))
            self.verdicts[number].append(claim["verdict"])
            self.comparisons[number].append({c["name"]: c["outcome"] for c in claim["comparisons"]})
            self.effects[number].append(
                {c["name"]: {k: c.get(k) for k in EFFECT_KEYS} for c in claim["comparisons"]}
            )
            if self.reasons is not None:
                self.reasons.setdefault(number, []).append(claim["reason"])

    def to_dict(
        self, judged: int, seeds: Sequence[int], over: str, verdict_at: str
    ) -> dict[str, Any]:
        """results.json's map, with the judged column named and the caption written. `over`
        says what the columns are ("training", "settings"), `verdict_at` names the judged
        column ("the last column (1000 steps)")."""
        found: dict[str, Any] = {
            "verdicts": self.verdicts,
            "comparisons": self.comparisons,
            "effects": self.effects,
            **self.columns,
        }
        if self.reasons is not None:
            found["reasons"] = self.reasons
        found["judged"] = judged
        found["descriptive"] = [i for i in range(len(self)) if i != judged]
        found["seeds"] = list(seeds)
        found["caption"] = caption(len(seeds), over, verdict_at)
        return found


def caption(seeds: int, over: str, verdict_at: str) -> str:
    """What a reader may and may not conclude from the map."""
    what = "training" if over == "training" else "a setting"
    text = (
        f"Every column judges models trained with the same {seeds} seed"
        f"{'s' * (seeds != 1)}, so the columns are not independent: a reading that flips "
        "between neighbouring columns whose intervals overlap is those seeds' luck, not "
        f"{what}. Only {verdict_at} is a verdict; the other columns describe each "
        "comparison's effect and interval along the way and are not verdicts of their own."
    )
    smallest = decidable(seeds, 1 - ALPHA)
    if smallest is None:
        return f"{text} One seed: no column can decide anything."
    return (
        f"{text} With {seeds} seeds an effect must exceed about {smallest:.2g} times the "
        "spread between seeds (at 95%; more for a claim of several comparisons) to be "
        "decided in any column."
    )
