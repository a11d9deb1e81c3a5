"""A checkpoint on the command line: `summary` and `export` take it like an architecture,
`predict` classifies image files as the Inspect tab does, `grow` inserts a block that
`train --resume` continues, and `train CHECKPOINT` trains its architecture from scratch."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from resnet_gui.cli import main
from resnet_gui.engine import data as data_module
from resnet_gui.engine.checkpoint import load_checkpoint
from resnet_gui.engine.data import preprocess
from resnet_gui.engine.inspect import evaluate_model, feature_maps, probe_test_image
from resnet_gui.engine.trained import load_trained
from tests.conftest import REPO
from tests.engine.test_trainer import one_thread, recipe, tiny_data  # noqa: F401
from tests.engine.trained_support import save_png, train_checkpoint


@pytest.fixture(scope="module")
def run_pt(tmp_path_factory):
    return train_checkpoint(tmp_path_factory.mktemp("cli") / "run.pt", resize=16,
                            max_steps=4, schedule="constant")


@pytest.fixture
def tiny_dataset(monkeypatch):
    """`train` reads the run's own data: the tiny generated set, not Fashion-MNIST."""
    monkeypatch.setattr(data_module, "load_data", lambda recipe, download=True: tiny_data())


def one_error_line(capsys) -> str:
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert out == "" and "Traceback" not in err and len(lines) == 1, err
    assert lines[0].startswith("resnet-gui: error: ")
    return lines[0][len("resnet-gui: error: "):]


def test_summary_reads_a_checkpoints_architecture(run_pt, capsys):
    assert main(["summary", str(run_pt)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("tiny: input 1x16x16, 3 classes, 2 blocks in 2 stages")
    assert main(["summary", str(run_pt), "--json", "--input", "1,32,32"]) == 0
    assert json.loads(capsys.readouterr().out)["input_shape"] == [1, 32, 32]


def test_export_writes_every_format_of_a_checkpoint(run_pt, tmp_path, capsys):
    for fmt in ("json", "py", "pt2"):
        assert main(["export", str(run_pt), "--format", fmt, "--out",
                     str(tmp_path / f"net.{fmt}")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1] == f"wrote {tmp_path / 'net.py'} and {tmp_path / 'net.pth'} (py: code and " \
                     "trained weights)"
    assert out[2] == f"wrote {tmp_path / 'net.pt2'} (pt2: trained weights, preprocessing " \
                     "inside: it takes uint8 images)"
    program = torch.export.load(io.BytesIO((tmp_path / "net.pt2").read_bytes())).module()
    images = tiny_data().test_images[:3]
    with torch.no_grad():
        torch.testing.assert_close(program(images), load_trained(run_pt).logits(images))
    assert main(["export", str(run_pt), "--format", "json", "--out", "-"]) == 0
    assert json.loads(capsys.readouterr().out)["input_size"] == [16, 16]


@pytest.mark.parametrize("extra, message", [
    (["--format", "onnx", "--out", "x.onnx", "--classes", "4"],
     "a trained network keeps the input and classes it was trained with"),
    (["--format", "py", "--out", "-"],
     "--out - (standard output) takes only json for a checkpoint"),
])
def test_export_of_a_checkpoint_refuses_what_cannot_be(run_pt, extra, message, capsys):
    assert main(["export", str(run_pt), *extra]) == 1
    assert one_error_line(capsys).startswith(message)


def test_predict_agrees_with_the_inspect_tab_on_the_same_images(run_pt, tmp_path, capsys):
    data = tiny_data()
    trained = load_trained(run_pt)
    run_recipe = recipe(resize=16)
    paths = [str(save_png(data.test_images[i].numpy(), tmp_path / f"{i}.png")) for i in range(6)]
    assert main(["predict", str(run_pt), *paths, "--top", "3", "--json"]) == 0
    answers = json.loads(capsys.readouterr().out)
    assert [answer["image"] for answer in answers] == paths

    def prepare(images):  # what the Inspect tab feeds its probe (qt/training/session.py)
        return preprocess(data, images, run_recipe)

    evaluation = evaluate_model(trained.model, data.test_images[:6], data.test_labels[:6],
                                prepare, data.num_classes)
    for index, answer in enumerate(answers):
        probe = probe_test_image(trained.model, data.test_images, data.test_labels, index,
                                 "layer2", prepare)
        logits = feature_maps(trained.model, prepare(data.test_images[index:index + 1]), "fc")
        probabilities = torch.from_numpy(logits[0, :, 0, 0]).softmax(0)
        top = answer["top"]
        assert top[0]["class"] == data.class_names[probe.predicted]
        assert top[0]["probability"] == pytest.approx(float(probabilities.max()), abs=1e-6)
        assert evaluation.predictions[index] == probe.predicted
        for entry in top:
            expected = float(probabilities[data.class_names.index(entry["class"])])
            assert entry["probability"] == pytest.approx(expected, abs=1e-6)
    assert main(["predict", str(run_pt), paths[0], "--top", "1"]) == 0
    name, probability = answers[0]["top"][0]["class"], answers[0]["top"][0]["probability"]
    assert capsys.readouterr().out == f"{paths[0]}: {name} {100 * probability:.1f} %\n"


def test_predict_mistakes_are_one_line(run_pt, tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "arch.json").write_text("{}")
    image = str(save_png(tiny_data().test_images[0].numpy(), tmp_path / "a.png"))
    cases = {
        (str(run_pt), image, "--top", "0"): "--top must be at least 1, got 0",
        (str(run_pt), str(tmp_path / "none.png")): f"IMAGE {tmp_path / 'none.png'} does not "
        "exist; give the path of an image file such as a PNG or JPEG",
        (str(run_pt), str(tmp_path / "notes.txt")): f"cannot read image {tmp_path / 'notes.txt'}",
        (str(tmp_path / "arch.json"), image): f"{tmp_path / 'arch.json'} is damaged or not a "
        "resnet-gui checkpoint",
    }
    for args, message in cases.items():
        assert main(["predict", *args]) == 1
        assert one_error_line(capsys).startswith(message), args


def test_grow_then_resume_and_compare_from_scratch(run_pt, tmp_path, capsys, tiny_dataset):
    grown = tmp_path / "grown.pt"
    assert main(["grow", str(run_pt), "--insert", "layer1:1", "--out", str(grown)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == (f"wrote {grown}: a basic block inserted as layer1.1 (3 blocks); max "
                      "|delta logit| = 0 on random inputs (the grown network computes what the "
                      "trained one did)")
    assert main(["train", "--resume", str(grown), "--no-progress"]) == 0
    resumed = load_checkpoint(grown)
    assert resumed["step"] == 6 and resumed["optimizer"] is not None
    assert resumed["grown"][0]["block"] == "layer1.1"
    capsys.readouterr()
    scratch = tmp_path / "scratch.pt"
    assert main(["train", str(grown), "--checkpoint", str(scratch), "--no-progress"]) == 0
    assert "a new run of the architecture and plan of" in capsys.readouterr().err
    fresh = load_checkpoint(scratch)
    assert fresh["architecture"] == resumed["architecture"] and fresh["step"] == 6
    assert not fresh.get("grown")  # the same budget, no growth


def test_grow_keeps_the_checkpoint_it_grows(run_pt, capsys):
    before = run_pt.read_bytes()
    assert main(["grow", str(run_pt), "--insert", "layer1:1", "--out", str(run_pt)]) == 1
    assert one_error_line(capsys) == (f"--out {run_pt} is the checkpoint being grown; give "
                                      "another file so that the trained network stays as it is")
    assert run_pt.read_bytes() == before


def make_image_folder(root, per_class=6):
    """Two classes of 20x24 colour photos: reddish and bluish."""
    rng = np.random.default_rng(0)
    for label, name in enumerate(("red", "blue")):
        (root / name).mkdir(parents=True)
        for index in range(per_class):
            pixels = rng.integers(0, 120, (3, 20, 24)).astype(np.uint8)
            pixels[0 if label == 0 else 2] += 120
            save_png(pixels, root / name / f"{index}.png")
    return root


def test_fine_tuning_imagenet_weights_on_a_folder_in_three_commands(tmp_path):
    """The README's recipe, end to end in fresh processes, with torchvision's resnet18 state
    dict (built locally) standing in for the ImageNet download in torch hub's cache."""
    import torchvision

    cache = tmp_path / "torch" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.save(torchvision.models.resnet18(weights=None).state_dict(),
               cache / "resnet18-f37072fd.pth")
    photos = make_image_folder(tmp_path / "photos")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TORCH_HOME": str(tmp_path / "torch")}

    def cli(*args):
        done = subprocess.run([sys.executable, "-m", "resnet_gui", *map(str, args)], cwd=REPO,
                              env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
        return done

    trained = cli("train", "resnet18", "--weights", "imagenet", "--dataset", f"folder:{photos}",
                  "--resize", "32", "--freeze", "layer2", "--epochs", "1", "--batch-size", "4",
                  "--checkpoint", tmp_path / "photos.pt", "--no-progress")
    assert f"started from torchvision's ImageNet weights for resnet18 ({cache}" in trained.stderr
    assert "a new 2-class head" in trained.stderr and "through layer2 stays fixed" in trained.stderr
    answer = json.loads(cli("predict", tmp_path / "photos.pt", photos / "red" / "0.png",
                            "--json").stdout)
    assert {entry["class"] for entry in answer[0]["top"]} == {"red", "blue"}
    cli("export", tmp_path / "photos.pt", "--format", "pt2", "--out", tmp_path / "photos.pt2")
    program = torch.export.load(str(tmp_path / "photos.pt2")).module()
    image = load_trained(tmp_path / "photos.pt").preprocessing.read(photos / "red" / "0.png")
    with torch.no_grad():
        probabilities = program(image).softmax(1)[0]
    names = ("blue", "red")  # the folder's classes, sorted
    for entry in answer[0]["top"]:
        assert entry["probability"] == pytest.approx(
            float(probabilities[names.index(entry["class"])]), abs=1e-5)


def test_a_checkpoint_is_recognised_before_anything_reads_it_as_json(run_pt, tmp_path):
    from resnet_gui.arch.resolve import is_checkpoint_file, locate_architecture
    from resnet_gui.errors import ArchitectureError

    (tmp_path / "arch.json").write_text("{}")
    assert is_checkpoint_file(run_pt) and not is_checkpoint_file(tmp_path / "arch.json")
    assert not is_checkpoint_file(tmp_path) and not is_checkpoint_file("resnet18")
    # Where only an architecture will do (the window, for now), one sentence says what to do.
    with pytest.raises(ArchitectureError) as caught:
        locate_architecture(str(run_pt))
    assert str(caught.value) == (f"{run_pt} is a trained checkpoint, not an architecture file; "
                                 f"write its architecture with 'resnet-gui export {run_pt} "
                                 "--format json --out ARCH.json'")


@pytest.mark.parametrize("extra, message", [
    (["--weights", "missing.pth"], "--weights missing.pth does not exist; give the path of a "
     "state dict (.pth), a resnet-gui checkpoint, or imagenet"),
    (["--freeze", "layer2"], "training setting 'freeze': freezes pretrained layers, but the "
     "network starts from random weights; give --weights imagenet or --weights FILE, or leave "
     "--freeze out"),
    (["--weights", "imagenet", "--pretrained-lr-scale", "0"], "training setting "
     "'pretrained_lr_scale': must be > 0 (freeze layers with --freeze instead), got 0.0"),
])
def test_train_refuses_bad_starting_weights_in_one_line(extra, message, tmp_path, monkeypatch,
                                                        capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "resnet18", *extra, "--no-progress"]) == 1
    assert one_error_line(capsys) == message
