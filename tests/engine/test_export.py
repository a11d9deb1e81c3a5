"""Exports: the standalone file computes what our module computes; ONNX and pt2 likewise."""

from __future__ import annotations

import ast
import importlib.util
import io
import subprocess
import sys

import pytest
import torch

from resnet_gui.engine import export as export_module
from resnet_gui.engine.export import export, to_python_source
from resnet_gui.engine.model import build_model
from resnet_gui.errors import ExportError
from resnet_gui.arch.model import Head, Shortcut, Stage, Stem
from resnet_gui.arch.presets import build_preset
from resnet_gui.arch.serialize import load_file


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: threads only add waiting on a busy machine
    yield
    torch.set_num_threads(threads)


def tiny(name: str, **changes):
    return build_preset(name, num_classes=5, input_size=16).replace(**changes)


def mixed_architecture():
    """Every block kind, every shortcut kind, a deep stem, a max-pool head with dropout."""
    return tiny("resnet18").replace(
        stem=Stem(kind="deep", width=4, stride=1, max_pool=True),
        stages=(
            Stage(("basic", "plain"), width=8, stride=1, shortcut=Shortcut("zero-pad", False)),
            Stage(("bottleneck", "plain-bottleneck"), width=4, stride=2,
                  shortcut=Shortcut("avgpool-projection", True, True), conv_bias=True),
            Stage(("preact-basic",), width=12, stride=2, shortcut=Shortcut("projection", True)),
            Stage(("preact-bottleneck", "preact-bottleneck"), width=4, stride=1,
                  shortcut=Shortcut("avgpool-projection", False, False)),
        ),
        head=Head(pool="max", dropout=0.3),
        in_channels=2,
    )


EXPORT_CASES = {
    "d2l-resnet18": lambda: tiny("d2l-resnet18"),
    "resnet50": lambda: tiny("resnet50"),
    "resnet20": lambda: tiny("resnet20"),
    "preact-resnet18": lambda: tiny("preact-resnet18"),
    "mixed": mixed_architecture,
}


def load_exported(path):
    spec = importlib.util.spec_from_file_location(f"exported_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("case", EXPORT_CASES)
def test_exported_python_computes_our_function_with_our_weights(case, tmp_path):
    arch = EXPORT_CASES[case]()
    path = export(arch, "py", tmp_path / f"{case.replace('-', '_')}.py")
    theirs = load_exported(path).build_model()
    ours = build_model(arch)
    for parameter in ours.parameters():  # not the initial BN (1, 0): make every weight count
        parameter.data.uniform_(-0.5, 0.5)
    ours.train()(torch.randn(4, arch.in_channels, 16, 16))  # move the running statistics
    if case == "mixed":  # the case exercises every shortcut module
        kinds = {type(m).__name__ for m in ours.modules()}
        assert {"ZeroPadShortcut", "AvgPool2d", "BatchNorm2d"} <= kinds
        assert {type(m).__name__ for m in theirs.modules()} >= {"ZeroPadShortcut", "AvgPool2d"}
    assert {k: v.shape for k, v in theirs.state_dict().items()} == {
        k: v.shape for k, v in ours.state_dict().items()
    }
    theirs.load_state_dict(ours.state_dict(), strict=True)
    x = torch.randn(3, arch.in_channels, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(theirs.eval()(x), ours.eval()(x))


def test_exported_python_imports_only_torch_and_reads_like_the_chapter():
    source = to_python_source(build_preset("resnet18"))
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module.split(".")[0])
    assert imported == {"torch"}
    assert "class Residual(nn.Module)" in source and "def resnet_stage(" in source
    assert "Bottleneck" not in source  # only the pieces this network uses
    assert "def build_model()" in source


def test_exported_python_runs_as_a_script(tmp_path):
    path = export(tiny("resnet20"), "py", tmp_path / "net.py")
    done = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "torch.Size([1, 5])" in done.stdout


def test_json_export_reloads_to_an_equal_architecture(tmp_path):
    arch = mixed_architecture()
    assert load_file(export(arch, "json", tmp_path / "sub" / "arch.json")) == arch


def test_pt2_export_carries_our_weights_and_a_free_batch_size(tmp_path):
    arch = tiny("resnet20")
    model = build_model(arch).train()
    path = export(arch, "pt2", tmp_path / "net.pt2", model=model)
    assert model.training  # the caller's model is left as it was
    program = torch.export.load(io.BytesIO(path.read_bytes()))
    x = torch.randn(5, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(program.module()(x), model.eval()(x))


def test_onnx_export_computes_our_function(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx.reference import ReferenceEvaluator

    arch = tiny("resnet20")
    model = build_model(arch).eval()
    path = export(arch, "onnx", tmp_path / "net.onnx", model=model)
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    session = ReferenceEvaluator(proto)
    x = torch.randn(3, 3, 16, 16)
    (logits,) = session.run(None, {"images": x.numpy()})
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(logits), model(x), atol=1e-4, rtol=1e-4)


def test_missing_export_packages_are_named(monkeypatch, tmp_path):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        export_module.importlib.util, "find_spec",
        lambda name, *a: None if name == "onnxscript" else real_find_spec(name, *a),
    )
    with pytest.raises(ExportError, match="onnxscript") as caught:
        export(tiny("resnet20"), "onnx", tmp_path / "net.onnx")
    assert "pip install onnxscript" in str(caught.value)
    assert not (tmp_path / "net.onnx").exists()


def test_unknown_format_is_refused(tmp_path):
    with pytest.raises(ExportError, match="json, py, onnx, pt2"):
        export(tiny("resnet20"), "tflite", tmp_path / "net.tflite")


def test_a_failed_export_leaves_the_previous_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "net.py"
    path.write_text("previous")

    def broken(arch):
        raise RuntimeError("generator failed")

    monkeypatch.setattr(export_module, "to_python_source", broken)
    with pytest.raises(RuntimeError):
        export(tiny("resnet20"), "py", path)
    assert path.read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["net.py"]
