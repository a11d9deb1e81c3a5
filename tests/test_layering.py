"""The layers point one way: arch (standard library) <- engine (torch, no Qt) <- qt.

Each check of a layer imports every module of it in a fresh interpreter and looks at
sys.modules. Inside qt/, the tabs are checked from the source: each tab package (build/,
train/, inspect/, any other folder beside them) sees only itself and qt/shared/; the frame
(the modules at qt/'s root) is what wires the tabs together.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent  # not from conftest: tests/engine has one too

QT = {"PySide6", "shiboken6", "pyqtgraph"}


def modules_after_import(statement: str) -> set[str]:
    """Top-level names in sys.modules after running ``statement`` in a new interpreter."""
    code = f"import sys, json; {statement}; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    return {name.split(".")[0] for name in json.loads(done.stdout.strip().splitlines()[-1])}


def import_every_module_of(package: str) -> str:
    return (
        f"import importlib, pkgutil, {package} as package; "
        f"names = [m.name for m in pkgutil.iter_modules(package.__path__, '{package}.')]; "
        "[importlib.import_module(name) for name in names]; "
        "assert names, 'no modules found'"
    )


def test_arch_imports_the_standard_library_only():
    loaded = modules_after_import(import_every_module_of("resnet_gui.arch") + "; import resnet_gui.errors")
    assert "resnet_gui" in loaded
    assert not loaded & ({"torch", "torchvision", "numpy"} | QT)


def test_engine_imports_no_qt():
    loaded = modules_after_import(import_every_module_of("resnet_gui.engine"))
    assert "torch" in loaded  # the engine really was imported
    assert not loaded & QT


def test_the_command_line_reads_architectures_before_importing_torch():
    loaded = modules_after_import(
        "import resnet_gui.cli; "
        "from resnet_gui.commands.network import resolve_architecture; "
        "resolve_architecture('resnet50', (3, 64, 64), 10)"
    )
    assert "torch" not in loaded


# -- inside qt/: the tabs meet only in the frame and in shared/ ------------------------------

QT_PACKAGE = "resnet_gui.qt"
QT_FOLDER = REPO / "resnet_gui" / "qt"
SHARED = "shared"


def tab_packages() -> list[str]:
    """Every package under qt/ but shared/: the tabs (build, train, inspect, lab, ...)."""
    return sorted(path.parent.name for path in QT_FOLDER.glob("*/__init__.py")
                  if path.parent.name != SHARED)


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, dotted name) of every import in the file, in functions too, relative ones
    resolved; ``from package import name`` counts as importing ``package.name``."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return sorted(found)


def qt_part(name: str) -> str | None:
    """Which part of qt/ a dotted name lies in: a package name, "frame" for the modules
    at qt/'s root (and qt itself), None outside qt/."""
    if name != QT_PACKAGE and not name.startswith(QT_PACKAGE + "."):
        return None
    first = name[len(QT_PACKAGE) + 1:].split(".")[0]
    return first if (QT_FOLDER / first / "__init__.py").is_file() else "frame"


def layering_problems(package: str) -> list[str]:
    """Imports from qt/<package>/ into another tab or the frame (or, for shared/, any tab)."""
    problems = []
    for path in sorted((QT_FOLDER / package).rglob("*.py")):
        for line, name in imported_modules(path):
            part = qt_part(name)
            if part is not None and part not in (package, SHARED):
                where = path.relative_to(REPO)
                problems.append(f"{where}:{line} imports {name} ({part})")
    return problems


def test_the_tabs_are_found():
    assert {"build", "train", "inspect"} <= set(tab_packages())
    assert SHARED not in tab_packages()


def test_a_tab_imports_no_other_tab_and_not_the_frame():
    problems = [problem for package in tab_packages() for problem in layering_problems(package)]
    assert not problems, "\n".join(problems)


def test_shared_imports_no_tab_and_not_the_frame():
    problems = layering_problems(SHARED)
    assert not problems, "\n".join(problems)


def test_the_layering_check_sees_every_kind_of_import(tmp_path, monkeypatch):
    """The checker itself: plain, from, relative and in-function imports are all caught."""
    tab = tmp_path / "resnet_gui" / "qt" / "lab"
    tab.mkdir(parents=True)
    for name in ("build", "shared", "lab"):
        (tmp_path / "resnet_gui" / "qt" / name).mkdir(exist_ok=True)
        (tmp_path / "resnet_gui" / "qt" / name / "__init__.py").write_text("")
    (tab / "view.py").write_text(
        "import resnet_gui.qt.build.canvas\n"
        "from resnet_gui.qt.shared import formatting\n"
        "from . import sibling\n"
        "from ..build import palette\n"
        "def later():\n"
        "    from resnet_gui.qt import main_window\n")
    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    monkeypatch.setattr(sys.modules[__name__], "QT_FOLDER", tmp_path / "resnet_gui" / "qt")
    assert tab_packages() == ["build", "lab"]
    problems = layering_problems("lab")
    assert [problem.split(" imports ")[1] for problem in problems] == [
        "resnet_gui.qt.build.canvas (build)",
        "resnet_gui.qt.build.palette (build)",
        "resnet_gui.qt.main_window (frame)",
    ]
