"""ARCH is read one way everywhere: `summary`/`export`, `train` and the window accept the same
arguments and refuse the others with the same one-line message and exit code."""

from __future__ import annotations

import pytest

from resnet_gui.cli import main
from resnet_gui.errors import ArchitectureError
from resnet_gui.arch.datasets import MNIST
from resnet_gui.arch.presets import build_preset
from resnet_gui.arch.resolve import locate_architecture, resolve_architecture
from resnet_gui.arch.serialize import dumps


@pytest.fixture
def files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny.json").write_text(dumps(build_preset("resnet20").replace(name="tiny")))
    (tmp_path / "broken.json").write_text('{"stages": [1, 2,,]}')
    (tmp_path / "runs").mkdir()
    (tmp_path / "resnet18").mkdir()  # a folder named like a preset does not hide the preset
    return tmp_path


BAD = {
    "resnet5O": "unknown preset 'resnet5O'; did you mean 'resnet50'?",
    "fmnist_fast": "unknown preset 'fmnist_fast'; did you mean 'fmnist-fast'?",
    "zzzz": "unknown preset 'zzzz'; run 'resnet-gui presets' to list them",
    "missing.json": "no file at missing.json; check the path",
    "nowhere/arch": "no file at nowhere/arch; check the path",
    "runs/": "runs/ is a folder; give an architecture JSON file in it, or a preset name",
    "broken.json": "line 1, column 18",
    "chapter": "'chapter' names a training recipe, not an architecture",
    "": "ARCH is empty; give a preset name (see 'resnet-gui presets') or an architecture JSON "
        "file",
}


def entry_points(arch: str) -> dict[str, list[str]]:
    return {
        "summary": ["summary", arch],
        "export": ["export", arch, "--format", "json", "--out", "out.json"],
        "train": ["train", arch, "--no-progress", "--data-dir", "."],
        "window": [arch],
    }


@pytest.mark.parametrize("arch", BAD)
def test_every_entry_point_refuses_the_same_argument_with_the_same_line(arch, files, capsys,
                                                                       monkeypatch):
    from resnet_gui.qt import main_window

    def no_window(*args, **kwargs):
        raise AssertionError("the window opened")

    monkeypatch.setattr(main_window, "MainWindow", no_window)
    lines = {}
    for name, argv in entry_points(arch).items():
        assert main(argv) == 2, name
        out, err = capsys.readouterr()
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1, (name, err)
        lines[name] = err.strip()
    assert len(set(lines.values())) == 1, lines
    assert BAD[arch] in lines["summary"]
    with pytest.raises(ArchitectureError) as caught:
        resolve_architecture(arch)
    assert lines["summary"] == f"resnet-gui: error: {caught.value}"
    assert not (files / "out.json").exists()


@pytest.mark.parametrize("arch", ["resnet18", "fmnist-fast", "tiny.json", "./tiny.json"])
def test_every_entry_point_accepts_presets_and_files(arch, files, capsys):
    assert main(["summary", arch, "--json"]) == 0
    assert main(["export", arch, "--format", "json", "--out", "-"]) == 0
    from resnet_gui.commands import train
    from resnet_gui.qt.main_window import load_architecture

    assert train.resolve_architecture is resolve_architecture
    window_arch, path = load_architecture(arch)
    assert (path is None) == (not arch.endswith(".json"))
    assert window_arch.name == resolve_architecture(arch).name


def test_presets_follow_the_dataset_and_overrides_apply_to_files_too(files):
    arch, path = locate_architecture("resnet18", dataset=MNIST)
    assert (arch.in_channels, arch.num_classes, path) == (1, 10, None)
    arch, path = locate_architecture("tiny.json", dataset=MNIST)  # a file keeps its own
    assert (arch.in_channels, arch.num_classes, path.name) == (3, 10, "tiny.json")
    arch = resolve_architecture("tiny.json", in_channels=1, num_classes=4, input_size=(28, 28))
    assert (arch.in_channels, arch.num_classes, arch.input_size) == (1, 4, (28, 28))


def test_a_bad_arch_for_the_window_is_one_line_even_without_a_display(tmp_path):
    import os
    import subprocess
    import sys

    from tests.conftest import REPO

    env = {key: value for key, value in os.environ.items()
           if key not in ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY")}
    done = subprocess.run([sys.executable, "-m", "resnet_gui", "resnet5O"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == ("resnet-gui: error: unknown preset 'resnet5O'; did you mean "
                                   "'resnet50'?")
