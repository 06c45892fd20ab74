"""Deliberate bugs that the tests must catch: each mutation in tests/mutations.toml, one by one.

For each mutation, the working tree this script lives in (the files git tracks or would track,
uncommitted changes included) is copied to a temporary folder, the mutation's snippet replaced
there, and the tests named for it run with this Python. Their failing means the bug is
caught; their passing, that it survived. A snippet found other than exactly once is an error
(the list is kept in step with the code as it moves), as is a test that fails or is not found
before any mutation: the tests of every selected mutation first run once unmutated.

    .venv/bin/python scripts/mutations.py                       # the whole list, a few minutes
    .venv/bin/python scripts/mutations.py --only ssl-gain-reversed --only iwae-kernel-sign
    .venv/bin/python scripts/mutations.py --list
    .venv/bin/python scripts/mutations.py --jobs 4              # four at a time, on four free cores

Exit status 0 when every mutation is caught but those marked pending, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIST = ROOT / "tests" / "mutations.toml"
FIELDS = {"name", "shows", "file", "old", "new", "tests", "breaks"}


@dataclass(frozen=True)
class Mutation:
    name: str
    shows: str  # the reported result it corrupts
    file: str
    old: str
    new: str
    tests: tuple[str, ...]
    breaks: str
    pending: str | None = None  # why it survives for now, and what will catch it


@dataclass(frozen=True)
class Outcome:
    mutation: Mutation
    status: str  # caught, survived, error
    detail: str
    seconds: float

    @property
    def as_expected(self) -> bool:
        return self.status == "caught" or (
            self.status == "survived" and bool(self.mutation.pending)
        )


def read_list(path: Path = LIST) -> list[Mutation]:
    entries = tomllib.loads(path.read_text())["mutation"]
    found = []
    for entry in entries:
        missing, unknown = FIELDS - set(entry), set(entry) - FIELDS - {"pending"}
        if missing or unknown:
            raise SystemExit(f"{path}: {entry.get('name', entry)}: missing {missing or '-'}, "
                             f"unknown {unknown or '-'}")  # fmt: skip
        found.append(Mutation(**{**entry, "tests": tuple(entry["tests"])}))
    names = [m.name for m in found]
    if len(set(names)) != len(names):
        raise SystemExit(f"{path}: a name is used twice")
    return found


def tracked_files(root: Path) -> list[str]:
    """The files git tracks or would track (not ignored), relative to `root`."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=root, capture_output=True, check=True,
    ).stdout.decode()  # fmt: skip
    return [f for f in listed.split("\0") if f and (root / f).is_file()]


def copy_tree(files: list[str], root: Path, to: Path) -> None:
    for name in files:
        (to / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / name, to / name)


def apply(mutation: Mutation, tree: Path) -> str | None:
    """Replace the snippet in `tree`; an error message where it is not found exactly once."""
    path = tree / mutation.file
    if not path.is_file():
        return f"{mutation.file} does not exist"
    text = path.read_text()
    count = text.count(mutation.old)
    if count != 1:
        return f"the snippet occurs {count} times in {mutation.file} (expected once)"
    path.write_text(text.replace(mutation.old, mutation.new))
    return None


def run_tests(
    tests: tuple[str, ...], tree: Path, timeout: float, stop_first: bool
) -> tuple[int, str]:
    """pytest's exit status and output for `tests`, run in `tree` with its own sources first."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(tree / "src"), env.get("PYTHONPATH", "")]).rstrip(
        os.pathsep
    )
    env.setdefault("OMP_NUM_THREADS", "1")
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rf", *tests]
    if stop_first:
        command.insert(4, "-x")
    try:
        done = subprocess.run(
            command, cwd=tree, env=env, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return -1, f"timed out after {timeout:.0f} s"
    return done.returncode, done.stdout + done.stderr


def failed_tests(output: str) -> list[str]:
    return re.findall(r"^(?:FAILED|ERROR) (.+?)(?: - .*)?$", output, flags=re.MULTILINE)


def judge(mutation: Mutation, files: list[str], work: Path, timeout: float) -> Outcome:
    started = time.perf_counter()
    tree = Path(tempfile.mkdtemp(prefix=f"{mutation.name}-", dir=work))
    try:
        copy_tree(files, ROOT, tree)
        problem = apply(mutation, tree)
        if problem:
            return Outcome(mutation, "error", problem, time.perf_counter() - started)
        code, output = run_tests(mutation.tests, tree, timeout, stop_first=True)
    finally:
        shutil.rmtree(tree, ignore_errors=True)
    seconds = time.perf_counter() - started
    if code == 0:
        return Outcome(mutation, "survived", "its tests pass", seconds)
    if code in (1, 2):  # tests failed, or the mutated code broke their collection
        failing = failed_tests(output)
        return Outcome(mutation, "caught", f"by {failing[0] if failing else 'collection'}", seconds)
    tail = output.strip().splitlines()[-1] if output.strip() else ""
    return Outcome(mutation, "error", f"pytest exit {code}: {tail}", seconds)


def baseline(mutations: list[Mutation], files: list[str], work: Path, timeout: float) -> set[str]:
    """The names of mutations whose tests fail, or are not found, unmutated."""
    tests = tuple(dict.fromkeys(t for m in mutations for t in m.tests))
    tree = work / "unmutated"
    copy_tree(files, ROOT, tree)
    code, output = run_tests(tests, tree, timeout * 2, stop_first=False)
    if code == 0:
        return set()
    failing = failed_tests(output)
    if not failing:  # not found, or a collection error: blame every mutation
        print(output.strip().splitlines()[-1] if output.strip() else f"pytest exit {code}")
        return {m.name for m in mutations}
    print("failing before any mutation: " + ", ".join(failing))
    return {m.name for m in mutations if any(f.startswith(t) for f in failing for t in m.tests)}


def summary(outcomes: list[Outcome]) -> str:
    width = max(len("mutation"), *(len(o.mutation.name) for o in outcomes))
    lines = [f"{'mutation':<{width}}  {'shows':<18} {'result':<9} {'s':>5}  detail"]
    for o in outcomes:
        detail = o.detail
        if o.mutation.pending:
            detail += f" (pending: {o.mutation.pending})"
        m = o.mutation
        lines.append(f"{m.name:<{width}}  {m.shows:<18} {o.status:<9} {o.seconds:>5.0f}  {detail}")
    counts = {s: sum(o.status == s for o in outcomes) for s in ("caught", "survived", "error")}
    pending = sum(o.status == "survived" and bool(o.mutation.pending) for o in outcomes)
    lines.append(
        f"{len(outcomes)} mutations: {counts['caught']} caught, {counts['survived']} survived "
        f"({pending} of them pending), {counts['error']} errors"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", default=[], metavar="NAME")
    parser.add_argument("--file", type=Path, default=LIST, help="the list [tests/mutations.toml]")
    parser.add_argument("--list", action="store_true", help="print the mutations and stop")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per mutation")
    parser.add_argument("--jobs", type=int, default=1, help="mutations tested at once")
    args = parser.parse_args(argv)
    mutations = read_list(args.file)
    unknown = set(args.only) - {m.name for m in mutations}
    if unknown:
        parser.error(f"no mutation named {', '.join(sorted(unknown))}")
    chosen = [m for m in mutations if not args.only or m.name in args.only]
    if args.list:
        for m in chosen:
            print(f"{m.name:<40} {m.shows:<18} {m.file}: {m.breaks}")
        return 0
    files = tracked_files(ROOT)
    with tempfile.TemporaryDirectory(prefix="vaelab-mutations-") as tmp:
        work = Path(tmp)
        os.environ["VAELAB_KERNEL_CACHE"] = str(work / "kernels")  # mutants' builds stay here
        broken = baseline(chosen, files, work, args.timeout)

        def one(m: Mutation) -> Outcome:
            if m.name in broken:
                outcome = Outcome(m, "error", "its tests fail or are missing unmutated", 0.0)
            else:
                outcome = judge(m, files, work, args.timeout)
            print(f"{m.name}: {outcome.status} ({outcome.detail})", flush=True)
            return outcome

        with ThreadPoolExecutor(max_workers=args.jobs) as pool:  # each in its own copy
            outcomes = list(pool.map(one, chosen))
    print()
    print(summary(outcomes))
    return 0 if all(o.as_expected for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
