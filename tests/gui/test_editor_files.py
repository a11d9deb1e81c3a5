"""Files: save then open, the unsaved-changes prompt, bad files, export, recent files."""

from __future__ import annotations

import json

from gui_helpers import settle
from resnet_gui.arch import edits, serialize
from resnet_gui.arch.edits import Part


def test_save_then_open_gives_an_equal_architecture(make_window, qtbot, tmp_path,
                                                     isolated_settings):
    window = make_window()
    window.controller.edit(edits.morph_stage, 2, "bottleneck", label="morph")
    window.controller.edit(edits.set_head, dropout=0.25, label="dropout")
    edited = window.document.arch
    assert window.isWindowModified()
    path = tmp_path / "mine.json"
    window.ask_save_path = lambda *args: str(path)
    assert window.save()  # no path yet: Save asks where
    assert serialize.load_file(path) == edited
    assert not window.isWindowModified() and "mine.json" in window.windowTitle()
    assert isolated_settings.value("files/last") == str(path.resolve())

    other = make_window("resnet18")
    assert other.open_file(path)
    settle(qtbot, other)
    assert other.document.arch == edited and other.document.path == path
    assert not other.document.can_undo and not other.isWindowModified()
    assert str(path.resolve()) in other.recent_files()


def test_the_unsaved_changes_prompt_can_cancel_discard_or_save(make_window, tmp_path):
    window = make_window()
    window.controller.edit(edits.set_stage, 0, width=32, label="width")
    edited = window.document.arch
    answers = []
    window.ask_unsaved_changes = lambda: answers.pop(0)

    answers.append("cancel")
    assert not window.new_from_preset("resnet18")
    assert window.document.arch == edited

    path = tmp_path / "kept.json"
    window.ask_save_path = lambda *args: str(path)
    answers.append("save")
    assert window.new_from_preset("resnet18")
    assert serialize.load_file(path) == edited and window.document.arch.name == "resnet18"

    window.controller.edit(edits.set_stage, 0, width=48, label="width")
    answers.append("discard")
    assert window.new_from_preset("resnet34")
    assert window.document.arch.name == "resnet34"
    assert not answers


def test_closing_with_unsaved_changes_asks_first(make_window):
    window = make_window()
    window.controller.edit(edits.set_stage, 0, width=32, label="width")
    window.ask_unsaved_changes = lambda: "cancel"
    assert not window.close() and window.isVisible()
    window.ask_unsaved_changes = lambda: "discard"
    assert window.close()


def test_a_bad_file_is_refused_with_one_sentence(make_window, tmp_path):
    window = make_window()
    before = window.document.arch
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"stages": [{"block": "resnext", "num_blocks": 2, "width": 64}]}))
    assert not window.open_file(bad)
    message = window.statusBar().currentMessage()
    assert "unknown block kind 'resnext'" in message and "\n" not in message
    assert window.document.arch == before


def test_saving_an_invalid_architecture_says_why(make_window, tmp_path, qtbot):
    window = make_window("resnet20")
    window.controller.select(Part.stage(1))
    window.inspector.stage_width.setValue(8)  # zero-padding cannot shrink channels
    assert not window.save_to(tmp_path / "x.json")
    assert "zero-padding cannot reduce channels" in window.statusBar().currentMessage()
    assert not (tmp_path / "x.json").exists()


def test_export_as_pytorch_code_builds_the_same_network(make_window, qtbot, tmp_path):
    window = make_window()
    path = tmp_path / "net.py"
    with qtbot.waitSignal(window.exportFinished, timeout=60000) as finished:
        assert window.export_to("py", path)
    assert finished.args == [str(path), ""]
    namespace: dict = {}
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    model = namespace["build_model"]()
    total = sum(parameter.numel() for parameter in model.parameters())
    assert total == window.controller.analysis.total_params == 11_178_378
    assert "Exported" in window.statusBar().currentMessage()


def test_export_as_onnx_goes_through_the_engine_off_the_gui_thread(make_window, qtbot,
                                                                  tmp_path, monkeypatch):
    """The ONNX file itself is the engine's (tests/engine); here: the window asks for it with
    the current architecture, on a worker thread, and reports a failure as its sentence."""
    import threading

    from resnet_gui.engine import export as export_module
    from resnet_gui.errors import ExportError

    window = make_window()
    calls = []

    def fake_export(arch, fmt, path, model=None):
        calls.append((arch, fmt, str(path), threading.current_thread() is threading.main_thread()))
        raise ExportError("ONNX export needs onnxscript; install with: pip install onnxscript")

    monkeypatch.setattr(export_module, "export", fake_export)
    window.ask_save_path = lambda *args: str(tmp_path / "net.onnx")
    with qtbot.waitSignal(window.exportFinished, timeout=30000) as finished:
        window.export_onnx_action.trigger()
    assert calls == [(window.document.arch, "onnx", str(tmp_path / "net.onnx"), False)]
    assert "pip install onnxscript" in finished.args[1]
    assert "Export failed" in window.statusBar().currentMessage()
    assert window.export_onnx_action.isEnabled()


def test_the_data_folder_is_remembered(make_window, tmp_path, isolated_settings, monkeypatch):
    monkeypatch.delenv("RESNET_GUI_DATA", raising=False)
    window = make_window()
    window.set_data_folder(str(tmp_path / "datasets"))
    assert isolated_settings.value("data/folder") == str(tmp_path / "datasets")
    assert make_window().data_folder() == str(tmp_path / "datasets")
