"""The command line: presets, summary, export; every bad architecture is exit 2 and one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent  # not from conftest: tests/engine has one too
from resnet_gui.cli import main
from resnet_gui.arch.model import Stem
from resnet_gui.arch.presets import PRESETS, build_preset
from resnet_gui.arch.serialize import dumps, load_file


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "resnet_gui", *args],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )


def one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("resnet-gui: error: ")
    assert "Traceback" not in stderr
    return lines[0]


def test_presets_lists_every_preset_with_a_description():
    done = run_cli("presets")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert [line.split()[0] for line in lines] == list(PRESETS)
    assert all(len(line.split(None, 1)[1]) > 20 for line in lines)


def test_summary_prints_a_grouped_table_with_totals():
    done = run_cli("summary", "resnet18", "--input", "3,64,64", "--classes", "7")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    lines = done.stdout.splitlines()
    assert lines[0].startswith("resnet18: input 3x64x64, 7 classes")
    block = next(line for line in lines if line.startswith("  layer2.0 "))
    layer = next(line for line in lines if line.startswith("    layer2.0.conv1 "))
    shortcut = next(line for line in lines if line.startswith("      layer2.0.downsample.0 "))
    assert "BasicBlock" in block and "128x8x8" in block
    assert "Conv2d" in layer and "73,728" in layer  # 3x3x64x128 weights
    assert "Conv2d" in shortcut
    fc = next(line for line in lines if line.startswith("fc "))
    assert fc.split()[2] == "7"
    totals = "\n".join(lines[-4:])
    for label in ("Total parameters", "Trainable parameters", "Multiply-adds", "Activation memory"):
        assert label in totals
    assert "11,180,103" in totals  # resnet18 with a 7-class head


def test_summary_json_layers_sum_to_the_totals(capsys):
    assert main(["summary", "resnet50", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["input_shape"] == [3, 224, 224]
    assert data["total_params"] == 25_557_032
    assert data["total_macs"] == 4_089_184_256  # torchvision's under FlopCounterMode / 2
    assert sum(layer["params"] for layer in data["layers"]) == data["total_params"]
    assert sum(layer["macs"] for layer in data["layers"]) == data["total_macs"]
    first = data["layers"][0]
    assert first == {"name": "conv1", "type": "Conv2d", "depth": 0,
                     "output_shape": [64, 112, 112], "params": 9408, "macs": 118_013_952,
                     "receptive_field": 7, "jump": 2}
    assert {"layer1", "layer1.0"}.isdisjoint(layer["name"] for layer in data["layers"])


def test_summary_reads_an_architecture_file(tmp_path, capsys):
    path = tmp_path / "tiny.json"
    path.write_text(dumps(build_preset("resnet20").replace(name="tiny")))
    assert main(["summary", str(path), "--input", "1,28,28", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["name"] == "tiny" and data["input_shape"] == [1, 28, 28]
    assert data["layers"][-1]["output_shape"] == [10]


def test_maps_reaching_1x1_warn_on_stderr_but_still_summarise(capsys):
    assert main(["summary", "resnet50", "--input", "3,16,16"]) == 0
    out, err = capsys.readouterr()
    warnings = err.strip().splitlines()
    assert len(warnings) == 1 and warnings[0].startswith("resnet-gui: warning: layer4:")
    assert "Total parameters" in out


def test_export_json_py_and_pt2(tmp_path):
    arch_file = tmp_path / "out" / "cifar.json"
    done = run_cli("export", "resnet20", "--format", "json", "--out", str(arch_file), "--classes", "4")
    assert done.returncode == 0, done.stderr
    assert load_file(arch_file) == build_preset("resnet20", num_classes=4)
    code = tmp_path / "cifar.py"
    assert main(["export", str(arch_file), "--format", "py", "--out", str(code)]) == 0
    assert "def build_model()" in code.read_text()
    program = tmp_path / "cifar.pt2"
    assert main(["export", "resnet20", "--input", "3,8,8", "--format", "pt2",
                 "--out", str(program)]) == 0
    assert program.stat().st_size > 0


# -- bad input: exit 2, one line on stderr naming the field or layer ----------------------

GOOD = json.loads(dumps(build_preset("resnet20")))


def with_change(path: str, value):
    data = json.loads(json.dumps(GOOD))
    target = data
    keys = path.split(".")
    for key in keys[:-1]:
        target = target[int(key)] if key.isdigit() else target[key]
    target[keys[-1]] = value
    return json.dumps(data)


BAD_FILES = {
    "malformed JSON": ('{"stages": [1, 2,,]}', "line 1, column 18"),
    "not an architecture": ('{"hello": "world"}', "not a resnet-gui architecture"),
    "a list": ("[1, 2, 3]", "not a resnet-gui architecture"),
    "unknown block": (with_change("stages.0.block", "resnext"),
                      "stages[0].blocks[0]: unknown block kind 'resnext'; allowed: basic, bottleneck"),
    "unknown shortcut": (with_change("stages.1.shortcut.kind", "conv"),
                         "stages[1].shortcut.kind: unknown shortcut kind 'conv'; allowed: projection"),
    "unknown pooling": (with_change("head.pool", "median"),
                        "head.pool: unknown pooling kind 'median'; allowed: avg, max"),
    "zero width": (with_change("stages.2.width", 0), "stages[2].width: must be >= 1, got 0"),
    "negative width": (with_change("stem.width", -16), "stem.width: must be >= 1, got -16"),
    "zero blocks": (with_change("stages.0.num_blocks", 0), "stages[0].num_blocks"),
    "zero stride": (with_change("stages.1.stride", 0), "stages[1].stride: must be >= 1, got 0"),
    "empty stages": (with_change("stages", []), "stages: a network needs at least one stage"),
    "an import path as a kind": (with_change("stages.0.block", "os.system"),
                                 "unknown block kind 'os.system'"),
    "a 5000-digit number": (with_change("stem.width", 0).replace('"width": 0', '"width": '
                                                                  + "9" * 5000),
                            "holds a number thousands of digits long"),
    "an empty field name": (with_change("stem.", 1), "stem.'': unknown field; known fields"),
    "a bad shared shortcut": (with_change("shortcut", {"kind": "conv"}),
                              "shortcut.kind: unknown shortcut kind 'conv'"),
}


@pytest.mark.parametrize("case", BAD_FILES)
def test_bad_architecture_files_exit_2_with_one_line(case, tmp_path):
    text, expected = BAD_FILES[case]
    path = tmp_path / "arch.json"
    path.write_text(text)
    done = run_cli("summary", str(path))
    assert done.returncode == 2
    line = one_error_line(done.stderr)
    assert expected in line
    assert done.stdout == ""


@pytest.mark.parametrize(
    "args, expected",
    [
        (["summary", "resnet5O"], "unknown preset 'resnet5O'; did you mean 'resnet50'?"),
        (["summary", "missing.json"], "no file at missing.json"),
        (["summary", "resnet18", "--input", "3,224"], "--input: must be three positive"),
        (["summary", "resnet18", "--input", "3,0,224"], "--input: must be three positive"),
        (["summary", "resnet18", "--classes", "ten"], "--classes: must be a whole number"),
        (["summary", "resnet18", "--classes", "0"], "--classes: must be at least 1"),
        (["export", "resnet5O", "--format", "py", "--out", "{tmp}/x.py"], "did you mean 'resnet50'?"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(args, expected, tmp_path):
    done = run_cli(*(arg.format(tmp=tmp_path) for arg in args))
    assert done.returncode == 2
    assert expected in one_error_line(done.stderr)
    assert not (tmp_path / "x.py").exists()


def test_input_too_small_names_the_layer_and_its_input_size(tmp_path, capsys):
    data = json.loads(with_change("stem.padding", 0))
    data["stem"]["kernel"] = 7
    path = tmp_path / "arch.json"
    path.write_text(json.dumps(data))
    assert main(["summary", str(path), "--input", "3,5,5"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    line = one_error_line(err)
    assert "conv1: this Conv2d receives 5x5 maps" in line and "7x7 kernel" in line


def test_pt2_export_of_a_network_too_small_for_its_input_names_the_layer(tmp_path, capsys):
    arch = build_preset("resnet18").replace(stem=Stem(kernel=7, padding=0))
    path = tmp_path / "arch.json"
    path.write_text(dumps(arch))
    code = main(["export", str(path), "--input", "3,4,4", "--format", "pt2",
                 "--out", str(tmp_path / "net.pt2")])
    assert code == 2
    assert one_error_line(capsys.readouterr().err).startswith("resnet-gui: error: conv1:")
    assert not (tmp_path / "net.pt2").exists()


@pytest.mark.parametrize("args, expected", [
    (["summary", "resnet18", "--input", "-1,28,28"],
     "argument --input: expected one argument (write a value that starts with '-' as "
     "--input=VALUE); see 'resnet-gui summary --help'"),
    (["summary"], "the following arguments are required: ARCH; see 'resnet-gui summary --help'"),
    (["export", "resnet18", "--format", "tar", "--out", "{tmp}/x.py"], "argument --format: "
     "invalid choice: 'tar'"),
    (["train", "fmnist-fast", "--epochs", "nan"],
     "argument --epochs: invalid int value: 'nan'; see 'resnet-gui train --help'"),
    (["train", "fmnist-fast", "--lr", "fast"], "argument --lr: invalid float value: 'fast'"),
    (["--bogus"], "unrecognized arguments: --bogus; see 'resnet-gui --help'"),
])
def test_option_mistakes_are_one_line_without_the_usage(args, expected, tmp_path, capsys):
    assert main([arg.format(tmp=tmp_path) for arg in args]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert expected in one_error_line(err)
    assert list(tmp_path.iterdir()) == []


def test_a_file_starting_with_a_utf8_byte_order_mark_is_read(tmp_path, capsys):
    path = tmp_path / "arch.json"
    path.write_bytes(b"\xef\xbb\xbf" + dumps(build_preset("resnet20")).encode())
    assert main(["export", str(path), "--format", "json", "--out", "-"]) == 0
    assert json.loads(capsys.readouterr().out) == GOOD


def test_a_name_with_quotes_and_backslashes_exports_as_python_that_runs_nothing_else(
        tmp_path, capsys):
    import ast

    name = 'net"""\\N{x} """; import os #\\'
    path = tmp_path / "arch.json"
    path.write_text(dumps(build_preset("resnet20").replace(name=name)))
    code = tmp_path / "net.py"
    assert main(["export", str(path), "--format", "py", "--out", str(code)]) == 0
    module = ast.parse(code.read_text())
    assert ast.get_docstring(module).startswith(f"{name}: a residual network")
    assert not any(isinstance(node, ast.Import) and node.names[0].name == "os"
                   for node in module.body)


@pytest.mark.parametrize("name, char", [("two\nlines", "U+000A"), ("nul\x00", "U+0000"),
                                        ("half \ud800 pair", "U+D800")])
def test_a_name_with_a_control_character_is_refused(name, char, tmp_path, capsys):
    path = tmp_path / "arch.json"
    path.write_text(json.dumps({**GOOD, "name": name}))
    for args in (["summary", str(path)],
                 ["export", str(path), "--format", "py", "--out", str(tmp_path / "net.py")]):
        assert main(args) == 2
        out, err = capsys.readouterr()
        assert out == ""
        line = one_error_line(err)
        assert line.startswith("resnet-gui: error: name: must be one line of printable text")
        assert char in line
    assert not (tmp_path / "net.py").exists()


@pytest.mark.parametrize("kind", ["pipe", "device", "huge"])
def test_an_arch_that_is_a_pipe_a_device_or_huge_is_refused_unread(kind, tmp_path, capsys):
    # A pipe waited forever for a writer; /dev/zero and a huge file filled the memory.
    if kind == "pipe":
        path = tmp_path / "arch.json"
        os.mkfifo(path)
        expected = f"{path} is a device or pipe, not a file"
    elif kind == "device":
        path, expected = Path("/dev/zero"), "/dev/zero is a device or pipe, not a file"
    else:
        path = tmp_path / "arch.json"
        with open(path, "wb") as handle:
            handle.truncate(100 * 2**20)  # sparse: no disk used
        expected = f"{path} is 100 MiB, far larger than any architecture file"
    if not path.exists():
        pytest.skip("no /dev/zero here")
    assert main(["summary", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and one_error_line(err).startswith(f"resnet-gui: error: {expected}")
