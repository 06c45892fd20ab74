"""Atomic file writes: a reader sees the old file or the new one, never half of either.

Every JSON file vaelab writes is strict JSON (no NaN or Infinity tokens, which `jq`, browsers
and most JSON parsers reject). A failed write (a full or read-only disk, a missing permission)
is a VaelabError naming the file and the reason, and leaves the old file as it was.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import uuid
from pathlib import Path
from typing import Any

from vaelab.core.errors import VaelabError, WriteError

TEMP_SUFFIX = ".tmp"
"""Every temporary file is `.<target name>.<pid>.<32 hex digits>.tmp`, beside its target."""


def temporary_for(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}{TEMP_SUFFIX}")


def is_temporary(path: Path) -> bool:
    """Whether `path` is named as `temporary_for` names them (and so is safe to delete once
    its writer is gone)."""
    parts = path.name.removesuffix(TEMP_SUFFIX).rsplit(".", 2)
    return (
        path.name.startswith(".")
        and path.name.endswith(TEMP_SUFFIX)
        and len(parts) == 3
        and parts[1].isdigit()
        and len(parts[2]) == 32
        and all(c in "0123456789abcdef" for c in parts[2])
    )


def write_bytes(path: str | Path, data: bytes) -> None:
    """Write a uniquely named temp file beside `path`, fsync it, then rename it over `path`.

    The temp file is created with open(), so the user's umask sets its mode as for any file.
    """
    path = Path(path)
    tmp = temporary_for(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "xb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        _discard(tmp)
        raise write_error(path, err) from None
    except BaseException:
        _discard(tmp)
        raise


def write_text(path: str | Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, obj: Any) -> None:
    """Strict JSON, indented; a NaN or infinity anywhere in `obj` is a VaelabError."""
    try:
        text = json.dumps(obj, indent=2, allow_nan=False)  # keys in insertion order
    except ValueError:
        where = non_finite_path(obj) or "a value"
        raise VaelabError(
            f"cannot write {path}: {where} is not a finite number (NaN or infinity)"
        ) from None
    write_text(path, text + "\n")


def read_json_object(path: str | Path) -> dict[str, Any]:
    """The JSON object in `path`, or {} when it is missing, unreadable, damaged or not an
    object: what a cache of recomputable numbers reads (its writers write atomically)."""
    try:
        found = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def json_line(obj: Any) -> str:
    """One strict-JSON line for a log: non-finite floats become null (no NaN tokens)."""
    return json.dumps(finite_or_none(obj), allow_nan=False)


def append_line(path: str | Path, line: str) -> None:
    """Append `line` and a newline (a log: a kill can tear only this last line)."""
    try:
        with open(path, "a", encoding="utf-8") as f:
            f.write(line + "\n")
    except OSError as err:
        raise write_error(Path(path), err) from None


def finite_or_none(obj: Any) -> Any:
    """`obj` with every NaN or infinite float replaced by None, containers copied."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [finite_or_none(v) for v in obj]
    return obj


def non_finite_path(obj: Any, where: str = "") -> str | None:
    """Where the first NaN or infinity in `obj` sits, as `a.b[2]`; None if there is none."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return where or "the value"
    items = obj.items() if isinstance(obj, dict) else None
    if items is None and isinstance(obj, list | tuple):
        items = ((f"[{i}]", v) for i, v in enumerate(obj))
    for key, value in items or ():
        sub = f"{where}{key}" if str(key).startswith("[") else f"{where}.{key}".lstrip(".")
        found = non_finite_path(value, sub)
        if found:
            return found
    return None


def write_error(path: Path, err: OSError) -> WriteError:
    """One line: which file could not be written, and the system's reason."""
    reason = err.strerror or str(err) or type(err).__name__
    return WriteError(f"cannot write {path}: {reason}")


def _discard(tmp: Path) -> None:
    with contextlib.suppress(OSError):  # on a read-only disk it was never created
        tmp.unlink(missing_ok=True)
