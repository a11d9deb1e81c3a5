"""The layers point one way: arch (standard library) <- engine (torch, no Qt) <- qt.

Each check imports every module of a layer in a fresh interpreter and looks at sys.modules.
"""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import REPO

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
