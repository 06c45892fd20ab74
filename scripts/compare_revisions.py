"""Do two revisions of vaelab compute the same study? Runs a preset with each and compares.

    .venv/bin/python scripts/compare_revisions.py HEAD~1 HEAD            # the tiny preset
    .venv/bin/python scripts/compare_revisions.py main my-branch --preset quick

Each revision is checked out into a temporary git worktree and run with this environment's
Python (`PYTHONPATH=<worktree>/src`), one after the other, into its own study folder. Then it
compares every model's bytes (model.safetensors, by sha256) and results.json less what may
differ between two runs of one revision (timings, seconds, whether a model was reused), and
prints each difference. Exit status 0: the same; 1: they differ.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def comparable(out: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """results.json less timings and reuse, and {run folder: sha256 of its model}."""
    results = json.loads((out / "results.json").read_text())
    results.pop("timings", None)
    for record in results.get("training", {}).values():
        record.pop("seconds", None)
        record.pop("reused", None)
    models = {
        p.parent.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(out.glob("models/*/model.safetensors"))
    }
    return results, models


def differences(a: Any, b: Any, where: str = "") -> list[str]:
    if type(a) is not type(b):
        return [f"{where or '.'}: {type(a).__name__} vs {type(b).__name__}"]
    if isinstance(a, dict):
        found = [f"{where}/{k}: only in one" for k in sorted(set(a) ^ set(b), key=str)]
        for k in a.keys() & b.keys():
            found += differences(a[k], b[k], f"{where}/{k}")
        return found
    if isinstance(a, list):
        if len(a) != len(b):
            return [f"{where}: {len(a)} vs {len(b)} items"]
        return [
            d
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for d in differences(x, y, f"{where}[{i}]")
        ]
    return [] if a == b else [f"{where}: {str(a)[:60]} vs {str(b)[:60]}"]


def run(revision: str, preset: str, work: Path) -> Path:
    tree, out = (
        work / f"tree-{revision.replace('/', '_')}",
        work / f"study-{revision.replace('/', '_')}",
    )
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), revision],
        check=True,
        capture_output=True,
    )
    try:
        env = os.environ | {"PYTHONPATH": str(tree / "src")}
        cmd = [sys.executable, "-m", "vaelab", "study", "--preset", preset, "--out", str(out)]
        subprocess.run(cmd, check=True, env=env, cwd=tree, stdout=subprocess.DEVNULL)
    finally:
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)],
            check=False,
            capture_output=True,
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before")
    parser.add_argument("after")
    parser.add_argument("--preset", default="tiny")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="vaelab-compare-") as tmp:
        a = comparable(run(args.before, args.preset, Path(tmp)))
        b = comparable(run(args.after, args.preset, Path(tmp)))
    found = differences(a[1], b[1], "models") + differences(a[0], b[0], "results.json")
    print(f"{len(a[1])} models, results.json: {len(found)} difference(s)")
    for line in found:
        print(" ", line)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
