"""The package's structure: imports go one way, downward through the layers, never sideways.

Every module's imports are read with `ast` (nothing is imported). A package's layer is its
place in LAYERS; a module may import its own package and any package of a lower layer. The
top-level modules (the public API's facades) may import anything; nothing imports them.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).parents[1] / "src" / "vaelab"
LAYERS = (
    ("core",),
    ("data",),
    ("models",),
    ("training",),
    ("evaluation",),
    ("experiments", "claims"),
    ("execution", "report"),
    ("study",),
    ("cli",),
)
LEVEL = {package: level for level, packages in enumerate(LAYERS) for package in packages}
FACADES = {"__init__", "__main__", "config", "train"}  # vaelab.<name>: the public API
OPTIONAL = {"ray", "torch.utils.tensorboard", "playwright"}


def modules() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if "__pycache__" not in p.parts)


def package_of(path: Path, root: Path = SRC) -> str:
    parts = path.relative_to(root).parts
    return parts[0] if len(parts) > 1 else path.stem


def vaelab_imports(path: Path) -> list[tuple[str, int, bool, list[str]]]:
    """(module imported, line, inside a function, names) for every vaelab import."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    inner = {id(n) for f in functions for n in ast.walk(f)}
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.ImportFrom)
            and node.level == 0
            and (node.module or "").startswith("vaelab")
        ):
            names = [a.name for a in node.names]
            found.append((node.module, node.lineno, id(node) in inner, names))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("vaelab"):
                    found.append((alias.name, node.lineno, id(node) in inner, []))
    return found


def target_package(module: str, names: list[str]) -> str:
    parts = module.split(".")
    if len(parts) > 1:
        return parts[1]
    return names[0] if names else "__init__"


def test_every_package_has_a_layer():
    packages = {package_of(p) for p in modules()} - FACADES
    assert packages <= set(LEVEL), packages - set(LEVEL)


def violations(root: Path) -> list[str]:
    """Every import under `root` (a vaelab source tree) that goes up a layer or sideways."""
    wrong = []
    for path in sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts):
        here = package_of(path, root)
        if here in FACADES:
            continue
        for module, line, _, names in vaelab_imports(path):
            there = target_package(module, names)
            where = f"{path.relative_to(root.parent)}:{line} imports {module}"
            if there in FACADES:
                wrong.append(f"{where}: a facade of the public API, not a layer")
            elif there not in LEVEL or here not in LEVEL:
                wrong.append(f"{where}: {here if here not in LEVEL else there} has no layer")
            elif there != here and LEVEL[there] >= LEVEL[here]:
                side = "sideways" if LEVEL[there] == LEVEL[here] else "up a layer"
                wrong.append(
                    f"{where}: {side} ({here} is layer {LEVEL[here]}, {there} {LEVEL[there]})"
                )
    return wrong


def test_imports_go_downward_and_never_sideways():
    wrong = violations(SRC)
    assert not wrong, "\n".join(wrong)


def test_the_check_names_an_import_that_goes_up_or_sideways(tmp_path):
    root = tmp_path / "vaelab"
    for package, text in {
        "core/a.py": "from vaelab.study.pipeline import run_study\n",
        "claims/b.py": "def f():\n    from vaelab.experiments import common\n",
        "data/c.py": "from vaelab.core import fileio\n",
    }.items():
        (root / package).parent.mkdir(parents=True, exist_ok=True)
        (root / package).write_text(text)
    wrong = violations(root)
    assert len(wrong) == 2
    assert "core/a.py:1 imports vaelab.study.pipeline: up a layer" in wrong[1]
    assert "claims/b.py:2 imports vaelab.experiments: sideways" in wrong[0]


def test_no_private_name_is_imported_across_modules():
    wrong = [
        f"{path.relative_to(SRC.parent)}:{line} imports {name} from {module}"
        for path in modules()
        for module, line, _, names in vaelab_imports(path)
        for name in names
        if name.startswith("_") and not name.startswith("__")
    ]
    assert not wrong, "\n".join(wrong)


def test_imports_inside_functions_are_only_for_optional_or_costly_modules():
    allowed = []
    wrong = []
    for path in modules():
        lines = path.read_text(encoding="utf-8").splitlines()
        for module, line, inside, _ in vaelab_imports(path):
            if not inside:
                continue
            comment = lines[line - 1].split("#", 1)[1] if "#" in lines[line - 1] else ""
            if "start-up" in comment or path.stem in FACADES:
                allowed.append(module)
                continue
            wrong.append(f"{path.relative_to(SRC.parent)}:{line} imports {module} in a function")
    assert not wrong, "\n".join(wrong)
