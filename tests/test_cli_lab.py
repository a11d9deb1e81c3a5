"""`resnet-gui lab` end to end on tiny generated data: the three experiments through the real
command, their JSON, and one-line errors for every bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from resnet_gui.cli import main
from resnet_gui.engine.data import load_data, preprocess
from resnet_gui.engine.inspect import evaluate_model
from resnet_gui.engine.lab.common import load_trained
from tests.engine.test_data import write_fashion_mnist


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    write_fashion_mnist(root / "FashionMNIST" / "raw", train=64, test=30)
    return root


@pytest.fixture(scope="module")
def checkpoint(data_dir, tmp_path_factory):
    path = tmp_path_factory.mktemp("run") / "resnet20.pt"
    torch.set_num_threads(1)
    code = main(["train", "resnet20", "--data-dir", str(data_dir), "--epochs", "1",
                 "--batch-size", "32", "--checkpoint", str(path), "--no-progress"])
    assert code == 0
    return path


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert "Traceback" not in "\n".join(err)
    assert err[-1].startswith("resnet-gui: error: ")
    return err[-1]


def test_degradation_prints_the_table_and_writes_the_curves(data_dir, tmp_path, capsys):
    out = tmp_path / "degradation.json"
    code = main(["lab", "degradation", "--depths", "20", "--data-dir", str(data_dir),
                 "--epochs", "1", "--limit-train", "64", "--limit-test", "30", "--seed", "4",
                 "--json", str(out), "--checkpoints", str(tmp_path / "nets"), "--no-progress"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "resnet20" in printed and "plain20" in printed and "train error" in printed
    assert "8.75 % (He et al. Table 6, CIFAR-10)" in printed
    result = json.loads(out.read_text())
    assert [run["network"] for run in result["runs"]] == ["resnet20", "plain20"]
    assert result["recipe"]["seed"] == 4 and result["num_train"] == 64
    assert all(len(run["test_error"]) == 1 and run["step"][-1] == 1 for run in result["runs"])
    # The trained twins are saved for the lesion and landscape experiments.
    assert [run["checkpoint"] for run in result["runs"]] == [
        str(tmp_path / "nets" / "resnet20.pt"), str(tmp_path / "nets" / "plain20.pt")]
    assert load_trained(tmp_path / "nets" / "plain20.pt").arch.name == "plain20"


def test_lesion_writes_the_documented_json(checkpoint, data_dir, tmp_path, capsys):
    out = tmp_path / "lesion.json"
    code = main(["lab", "lesion", str(checkpoint), "--data-dir", str(data_dir), "--images",
                 "20", "--draws", "2", "--path-samples", "1", "--json", str(out),
                 "--no-progress"])
    assert code == 0
    assert "layer2.0" in capsys.readouterr().out
    result = json.loads(out.read_text())
    assert isinstance(result["baseline_accuracy"], float) and result["images"] == 20
    assert [b["name"] for b in result["blocks"]][:4] == ["layer1.0", "layer1.1", "layer1.2",
                                                         "layer2.0"]
    assert [b["downsampling"] for b in result["blocks"]] == [False] * 3 + [True, False,
                                                                           False] * 2
    assert [row["k"] for row in result["delete_k"]] == list(range(1, 8))
    assert all({"k", "mean_accuracy", "std"} <= row.keys() for row in result["delete_k"])


def test_landscape_centre_is_the_checkpoints_own_loss(checkpoint, data_dir, tmp_path, capsys):
    out = tmp_path / "landscape.json"
    code = main(["lab", "landscape", str(checkpoint), "--grid", "3", "--span", "0.5",
                 "--images", "30", "--precision", "fp32", "--data-dir", str(data_dir),
                 "--json", str(out), "--no-progress"])
    assert code == 0
    assert "centre (the trained network)" in capsys.readouterr().out
    result = json.loads(out.read_text())
    assert result["alpha"] == result["beta"] == [-0.5, 0.0, 0.5]
    assert np.array(result["loss"]).shape == (3, 3) and len(result["accuracy"]) == 3
    # The checkpoint's loss on the same 30 test images, computed independently.
    trained = load_trained(checkpoint)
    bundle = load_data(trained.recipe.replace(data_dir=str(data_dir)))
    own = evaluate_model(trained.model, preprocess(bundle, bundle.test_images, trained.recipe),
                         bundle.test_labels, lambda x: x, 10)
    assert result["loss"][1][1] == pytest.approx(own.loss, rel=1e-5)
    assert result["accuracy"][1][1] == own.accuracy


@pytest.mark.parametrize("arguments, message", [
    (["degradation", "--depths", "20,57"], "unknown depth 57"),
    (["degradation", "--depths", "twenty"], "--depths must be whole numbers"),
    (["degradation", "--depths", "20", "--epochs", "0"], "--epochs must be a whole number"),
    (["degradation", "--depths", "20", "--limit-train", "-5"], "--limit-train must be"),
    (["landscape", "CKPT", "--grid", "0"], "the grid must be an odd whole number"),
    (["landscape", "CKPT", "--grid", "20"], "the grid must be an odd whole number"),
    (["landscape", "CKPT", "--span", "-1"], "the span must be a number above 0"),
    (["landscape", "CKPT", "--images", "0"], "--images must be a whole number >= 1"),
    (["lesion", "CKPT", "--draws", "0"], "--draws must be a whole number >= 1"),
    (["lesion", "MISSING"], "does not exist"),
    (["lesion", "GARBAGE"], "is damaged or not a resnet-gui checkpoint"),
    (["lesion", "CKPT", "--json", "FOLDER"], "is a folder"),
    (["landscape", "CKPT", "--grid", "x"], "invalid int value"),
    (["degradation", "--depths", "20", "--checkpoints", "NOTOURS"], "is not a resnet-gui"),
])
def test_bad_inputs_are_one_line(arguments, message, checkpoint, data_dir, tmp_path, capsys):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "plain20.pt").write_bytes(b"the user's own file")
    names = {"CKPT": str(checkpoint), "MISSING": str(tmp_path / "missing.pt"),
             "GARBAGE": str(garbage), "FOLDER": str(tmp_path), "NOTOURS": str(tmp_path / "mine")}
    arguments = [names.get(a, a) for a in arguments]
    if "--json" not in arguments:
        arguments += ["--json", str(tmp_path / "out.json")]
    code = main(["lab", *arguments, "--data-dir", str(data_dir), "--no-progress"])
    assert code != 0
    assert message in one_error_line(capsys)
    assert not (tmp_path / "out.json").exists()  # nothing half-written
    assert (tmp_path / "mine" / "plain20.pt").read_bytes() == b"the user's own file"
