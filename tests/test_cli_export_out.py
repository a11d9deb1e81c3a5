"""`resnet-gui export --out`: '-' prints the text formats, a folder is one sentence; no file
named '-' is ever written."""

from __future__ import annotations

import ast

import pytest

from resnet_gui.cli import main
from resnet_gui.arch.presets import build_preset
from resnet_gui.arch.serialize import loads


def one_error_line(capsys) -> str:
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert out == "" and "Traceback" not in err and len(lines) == 1, err
    assert lines[0].startswith("resnet-gui: error: ")
    return lines[0]


def test_out_dash_prints_json_and_python_on_stdout(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["export", "resnet20", "--format", "json", "--out", "-", "--classes", "4"]) == 0
    out, err = capsys.readouterr()
    assert err == "" and loads(out) == build_preset("resnet20", num_classes=4)
    assert main(["export", "resnet20", "--format", "py", "--out", "-"]) == 0
    out, err = capsys.readouterr()
    assert err == "" and "def build_model()" in out
    ast.parse(out)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fmt", ["onnx", "pt2"])
def test_out_dash_for_a_binary_format_is_refused(fmt, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["export", "resnet20", "--format", fmt, "--out", "-"]) == 1
    assert one_error_line(capsys) == (
        f"resnet-gui: error: --out - (standard output) takes only the text formats json and "
        f"py; give a file name for {fmt}, such as resnet20.{fmt}")
    assert list(tmp_path.iterdir()) == []


def test_out_naming_a_folder_is_refused(tmp_path, capsys):
    assert main(["export", "resnet20", "--format", "json", "--out", str(tmp_path)]) == 1
    assert one_error_line(capsys) == (
        f"resnet-gui: error: --out {tmp_path} is a folder; give a file path such as "
        f"{tmp_path / 'resnet20.json'}")
    assert list(tmp_path.iterdir()) == []


def test_a_write_protected_file_is_not_replaced(tmp_path, capsys):
    target = tmp_path / "net.py"
    target.write_text("keep me")
    target.chmod(0o444)
    assert main(["export", "resnet20", "--format", "py", "--out", str(target)]) == 1
    assert one_error_line(capsys) == (f"resnet-gui: error: --out {target} is read-only; make "
                                      "it writable or choose another name")
    assert target.read_text() == "keep me" and list(tmp_path.iterdir()) == [target]
