"""Small helpers every layer uses: one way each to say an error in a line, read an on/off
environment variable, fingerprint a JSON value or a piece of code, and write a duration."""

from __future__ import annotations

import ast
import functools
import hashlib
import json
import os
from importlib import util as importlib_util
from pathlib import Path
from typing import Any

import platformdirs

ON_WORDS = ("1", "true", "yes", "on")
OFF_WORDS = ("0", "false", "no", "off")


def one_line(text: str) -> str:
    """`text` with every run of white space (newlines included) folded into one space."""
    return " ".join(str(text).split())


def first_line(error: BaseException | str) -> str:
    """The first non-blank line of an error (or of a process's stderr it carries), else the
    error's type name: what a one-line message should quote of it."""
    text = getattr(error, "stderr", None) or str(error)
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    if lines:
        return lines[0]
    return type(error).__name__ if isinstance(error, BaseException) else ""


def env_flag(name: str, default: bool) -> bool:
    """An on/off environment variable: 1/true/yes/on or 0/false/no/off (any case); unset,
    empty or any other word leaves `default`."""
    value = os.environ.get(name, "").strip().lower()
    if value in ON_WORDS:
        return True
    if value in OFF_WORDS:
        return False
    return default


def default_cache_dir() -> Path:
    """`$VAELAB_CACHE`, else the user's cache folder for vaelab (`~/.cache/vaelab` on Linux,
    by platformdirs): one download and one kernel build serve every run on the machine."""
    env = os.environ.get("VAELAB_CACHE")
    return Path(env).expanduser() if env else Path(platformdirs.user_cache_dir("vaelab"))


def json_digest(value: Any, length: int | None = None) -> str:
    """sha256 of `value` as canonical JSON (sorted keys): the same value, the same digest."""
    digest = hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()
    return digest if length is None else digest[:length]


def format_duration(seconds: float | None) -> str:
    """ "1h05m" or "4m09s" (and "0m12s"); "-" when unknown or not positive."""
    if seconds is None or seconds <= 0:
        return "-"
    minutes, s = divmod(int(seconds + 0.5), 60)
    hours, m = divmod(minutes, 60)
    if hours:
        return f"{hours}h{m:02d}m"
    return f"{m}m{s:02d}s"


@functools.cache
def code_digest(*modules: str) -> str:
    """sha256 of the source of `modules` and of every vaelab module they import, however
    deeply: it changes whenever any code that could change their results changes."""
    seen: dict[str, bytes] = {}
    todo = list(modules)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        source = _source(name)
        seen[name] = source
        todo += [m for m in _vaelab_imports(source, name) if m not in seen]
    digest = hashlib.sha256()
    for name in sorted(seen):
        digest.update(name.encode() + b"\0" + seen[name] + b"\0")
    return digest.hexdigest()


def _source(module: str) -> bytes:
    if not _is_module(module):
        return b""
    spec = importlib_util.find_spec(module)
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        return b""
    return Path(spec.origin).read_bytes()


def _vaelab_imports(source: bytes, module: str) -> list[str]:
    """The vaelab modules `source` imports (from X import Y counts X and X.Y if a module)."""
    found = []
    package = module if module.endswith("__init__") else module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            found.append(base)
            found += [f"{base}.{a.name}" for a in node.names]
    return [m for m in found if m.split(".")[0] == "vaelab" and _is_module(m)]


def _is_module(name: str) -> bool:
    try:
        return importlib_util.find_spec(name) is not None
    except (ImportError, AttributeError, ValueError):  # a name imported from a module
        return False
