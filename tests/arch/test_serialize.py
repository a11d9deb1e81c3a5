"""Architecture JSON: round trips, schema version, strict fields, atomic writes."""

from __future__ import annotations

import json
import os

import pytest

from resnet_gui.errors import ArchitectureError, UserError
from resnet_gui.arch import serialize
from resnet_gui.arch.model import Architecture, Head, Shortcut, Stage, Stem
from resnet_gui.arch.presets import PRESETS, build_preset
from resnet_gui.arch.serialize import (
    SCHEMA,
    SCHEMA_VERSION,
    atomic_write_bytes,
    dumps,
    from_dict,
    load_file,
    loads,
    save_file,
    to_dict,
)


def mixed() -> Architecture:
    return Architecture(
        name="mixed",
        in_channels=1,
        input_size=(28, 40),
        num_classes=7,
        stem=Stem(kind="deep", width=8, stride=1, padding=None, bias=True, max_pool=False),
        stages=(
            Stage(("basic", "plain", "basic"), width=16, stride=1,
                  shortcut=Shortcut("zero-pad", batch_norm=False)),
            Stage(("bottleneck",) * 2, width=8, stride=2,
                  shortcut=Shortcut("avgpool-projection", True, True), conv_bias=True),
            Stage(("preact-bottleneck",), width=16, stride=3),
        ),
        head=Head(pool="max", dropout=0.25),
    )


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_round_trips_through_json(name):
    arch = build_preset(name, in_channels=1, num_classes=3, input_size=(48, 64))
    assert loads(dumps(arch)) == arch


def test_a_mixed_architecture_round_trips_through_a_file(tmp_path):
    arch = mixed()
    path = tmp_path / "nested" / "mixed.json"
    save_file(arch, path)
    assert load_file(path) == arch
    data = json.loads(path.read_text())
    assert data["schema"] == SCHEMA and data["version"] == SCHEMA_VERSION
    assert data["stages"][0]["blocks"] == ["basic", "plain", "basic"]  # mixed: written out
    assert data["stages"][1]["block"] == "bottleneck" and data["stages"][1]["num_blocks"] == 2
    assert [p.name for p in path.parent.iterdir()] == ["mixed.json"]  # no temp file left


def test_short_forms_are_accepted():
    data = to_dict(build_preset("resnet18"))
    del data["schema"], data["version"]
    data["input_size"] = 64
    shortcut = data["stages"][0].pop("shortcut")
    for stage in data["stages"][1:]:
        del stage["shortcut"]
    data["shortcut"] = shortcut  # one shortcut for every stage
    arch = from_dict(data)
    assert arch.input_size == (64, 64)
    assert arch == build_preset("resnet18", input_size=64)


def test_a_newer_schema_version_asks_for_an_update():
    data = to_dict(build_preset("resnet18"))
    data["version"] = SCHEMA_VERSION + 1
    with pytest.raises(ArchitectureError, match="update resnet-gui") as caught:
        from_dict(data)
    assert caught.value.path == "version"


@pytest.mark.parametrize(
    "where, key, path, hint",
    [
        ((), "stagez", "stagez", "did you mean 'stages'?"),
        (("stem",), "kernal", "stem.kernal", "did you mean 'kernel'?"),
        (("head",), "__class__", "head.__class__", "known fields: pool, dropout"),
    ],
)
def test_unknown_fields_are_refused_with_a_suggestion(where, key, path, hint):
    data = to_dict(build_preset("resnet18"))
    target = data
    for part in where:
        target = target[part]
    target[key] = 1
    with pytest.raises(ArchitectureError) as caught:
        from_dict(data)
    assert caught.value.path == path and hint in str(caught.value)


def test_malformed_json_gives_line_and_column():
    with pytest.raises(ArchitectureError, match=r"line 3, column 5"):
        loads('{\n "stages": [\n    ,]}', source="arch.json")


@pytest.mark.parametrize("content", [b"\x89PNG\r\n\x1a\n\x00\x00", b'"just a string"', b"[]"])
def test_files_that_are_not_architectures_are_refused(tmp_path, content):
    path = tmp_path / "thing.json"
    path.write_bytes(content)
    with pytest.raises(ArchitectureError) as caught:
        load_file(path)
    assert "\n" not in str(caught.value)


def test_missing_files_and_folders_are_named(tmp_path):
    with pytest.raises(ArchitectureError, match="no file at"):
        load_file(tmp_path / "absent.json")
    with pytest.raises(ArchitectureError, match="is a folder"):
        load_file(tmp_path)


def test_a_failed_write_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "arch.json"
    path.write_text("previous")

    def full_disk(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(serialize.os, "replace", full_disk)
    with pytest.raises(UserError, match="the disk is full; any previous version"):
        atomic_write_bytes(path, b"new")
    monkeypatch.undo()
    assert path.read_text() == "previous"
    assert os.listdir(tmp_path) == ["arch.json"]


def test_saved_files_get_ordinary_permissions(tmp_path):
    plain = tmp_path / "plain.json"
    plain.write_text("{}")
    saved = tmp_path / "saved.json"
    save_file(build_preset("resnet18"), saved)
    assert saved.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777
    os.chmod(saved, 0o640)  # an existing file keeps its mode
    save_file(build_preset("resnet34"), saved)
    assert saved.stat().st_mode & 0o777 == 0o640


def test_deeply_nested_json_is_refused_in_one_sentence():
    with pytest.raises(ArchitectureError, match="nests its values too deeply"):
        loads("[" * 100_000 + "]" * 100_000)


@pytest.mark.parametrize("version", ["1", 0, 1.5])
def test_a_version_that_is_not_a_whole_number_is_named(version):
    data = to_dict(build_preset("resnet20"))
    data["version"] = version
    with pytest.raises(ArchitectureError, match="version: must be a whole number"):
        from_dict(data)


def test_saving_over_a_write_protected_file_is_refused_and_it_is_kept(tmp_path):
    from resnet_gui.errors import FileWriteError
    from resnet_gui.arch.serialize import save_file

    target = tmp_path / "net.json"
    target.write_text("keep me")
    target.chmod(0o444)
    with pytest.raises(FileWriteError, match="is read-only; make it writable"):
        save_file(build_preset("resnet20"), target)
    assert target.read_text() == "keep me" and list(tmp_path.iterdir()) == [target]
