"""docs/settings.md, generated from the config dataclasses' field metadata (the one source).

Regenerate with `python -m vaelab.core.settings_doc docs/settings.md`; a test checks the file
matches.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import typing
from pathlib import Path
from typing import Any

from vaelab.core.config import StudyConfig

HEADER = """# Settings of a study TOML

Every setting a study file (`vaelab study --preset my.toml`) may hold, with its meaning, unit
and default. Top-level settings come first, then one table per section (`[model]`, `[train]`,
`[data]`, `[experiments]`). A run TOML (`vaelab train --config run.toml`) takes the `[model]`,
`[train]` and `[data]` sections. Unset means the setting is left out of the file.
`model.kind` and `model.latent` of a study are set per run by `models` and `latents`.

This file is generated from `src/vaelab/core/config.py`: run
`python -m vaelab.core.settings_doc docs/settings.md` after changing a setting.
"""


def _type_name(hint: Any) -> str:
    """int, float, str, list of int, ... ("or unset" where the setting may be left out)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if args and type(None) in args:
        inner = [a for a in args if a is not type(None)]
        return f"{_type_name(inner[0])} or unset"
    if origin is tuple:
        item = args[0] if args[-1] is Ellipsis else hint
        return f"list of {_type_name(item)}" if args[-1] is Ellipsis else "list"
    return hint.__name__ if isinstance(hint, type) else str(hint)


def _default(f: dataclasses.Field) -> str:
    if f.default is dataclasses.MISSING:
        return ""
    value = f.default
    if value is None:
        return "unset"
    return f"`{json.dumps(json.loads(json.dumps(value)))}`"


def _rows(cls: type) -> list[str]:
    hints = typing.get_type_hints(cls)
    rows = []
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            continue
        meta = f.metadata
        rows.append(
            f"| `{f.name}` | {_type_name(hints[f.name])} | {meta.get('unit', '')} | "
            f"{_default(f)} | {meta.get('help', '')} |"
        )
    return rows


def settings_markdown() -> str:
    """The whole reference as Markdown."""
    head = "| setting | type | unit | default | meaning |\n|---|---|---|---|---|"
    parts = [HEADER, "## Top level\n", head, *_rows(StudyConfig), ""]
    hints = typing.get_type_hints(StudyConfig)
    for f in dataclasses.fields(StudyConfig):
        if dataclasses.is_dataclass(hints[f.name]):
            parts += [f"## [{f.name}]\n", head, *_rows(hints[f.name]), ""]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    target = Path(args[0]) if args else Path("docs/settings.md")
    target.write_text(settings_markdown(), encoding="utf-8")
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
