"""A trained network leaves the app: the checkpoint records its preprocessing and classes;
exports carry the weights and the preprocessing, and give the checkpoint's answer on the same
image; image files of any mode are read as the network expects."""

from __future__ import annotations

import importlib.util
import io
import json

import numpy as np
import pytest
import torch

from resnet_gui.engine.checkpoint import load_checkpoint, save_checkpoint
from resnet_gui.engine.data import make_bundle
from resnet_gui.engine.export import (
    METADATA_KEY,
    PT2_METADATA_FILE,
    export_trained,
    weights_path_beside,
)
from resnet_gui.engine.trained import Preprocessing, load_trained
from resnet_gui.engine.trainer import Trainer
from resnet_gui.errors import CheckpointError, ExportError
from tests.engine.test_trainer import TINY, one_thread, recipe, tiny_data  # noqa: F401
from tests.engine.trained_support import save_png, train_checkpoint

IMAGES = torch.randint(0, 256, (4, 1, 10, 10), dtype=torch.uint8, generator=torch.Generator()
                       .manual_seed(1))


@pytest.fixture(scope="module")
def upsized(tmp_path_factory):
    """Trained on 10x10 images resized to 16x16 inside the batches (as the chapter's 96)."""
    return load_trained(train_checkpoint(tmp_path_factory.mktemp("up") / "run.pt", resize=16))


@pytest.fixture(scope="module")
def downsized(tmp_path_factory):
    """Resized to 8x8: the shrink is antialiased."""
    return load_trained(train_checkpoint(tmp_path_factory.mktemp("down") / "run.pt", resize=8))


def test_a_checkpoint_records_how_images_became_the_input(upsized):
    data = tiny_data()
    p = upsized.preprocessing
    assert p.class_names == ("low", "mid", "high") and p.image_size == (10, 10)
    assert (p.resize, p.input_size, p.channels) == (16, (16, 16), 1)
    assert p.mean == pytest.approx(data.mean) and p.std == pytest.approx(data.std)
    assert Preprocessing.from_dict(json.loads(json.dumps(p.to_dict()))) == p
    # The network gets, from stored images, exactly the trainer's test-time batches.
    from resnet_gui.engine.data import preprocess

    torch.testing.assert_close(p.batch_maker()(IMAGES), preprocess(data, IMAGES, recipe(resize=16)))


def test_an_older_checkpoint_without_the_record_says_what_to_do(upsized, tmp_path,
                                                                monkeypatch):
    monkeypatch.setenv("RESNET_GUI_DATA", str(tmp_path / "empty"))
    old = {k: v for k, v in upsized.checkpoint.items() if k != "preprocessing"}
    save_checkpoint(tmp_path / "old.pt", old)
    with pytest.raises(CheckpointError, match="was written before checkpoints recorded their "
                       "preprocessing, and its dataset fashion-mnist cannot be read"):
        load_trained(tmp_path / "old.pt")


def test_an_older_checkpoint_gets_the_record_from_its_dataset(tmp_path, monkeypatch):
    from tests.engine.test_data import write_fashion_mnist

    write_fashion_mnist(tmp_path / "FashionMNIST" / "raw", train=40, test=10)
    monkeypatch.setenv("RESNET_GUI_DATA", str(tmp_path))
    from resnet_gui.engine.data import load_data

    data = load_data(recipe(), download=False)
    Trainer(TINY, recipe(epochs=1), data=data, checkpoint_path=tmp_path / "run.pt").run()
    checkpoint = load_checkpoint(tmp_path / "run.pt")
    save_checkpoint(tmp_path / "old.pt", {k: v for k, v in checkpoint.items()
                                          if k != "preprocessing"})
    assert load_trained(tmp_path / "old.pt").preprocessing == load_trained(
        tmp_path / "run.pt").preprocessing


@pytest.mark.parametrize("fixture", ["upsized", "downsized"])
def test_onnx_with_preprocessing_gives_the_checkpoints_logits(fixture, request, tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx.reference import ReferenceEvaluator

    trained = request.getfixturevalue(fixture)
    (path,) = export_trained(trained, "onnx", tmp_path / "net.onnx")
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    metadata = json.loads({p.key: p.value for p in proto.metadata_props}[METADATA_KEY])
    assert metadata["class_names"] == ["low", "mid", "high"]
    assert metadata["input"].startswith("uint8 images (N, 1, 10, 10)")
    (logits,) = ReferenceEvaluator(proto).run(None, {"images": IMAGES.numpy()})
    torch.testing.assert_close(torch.from_numpy(logits), trained.logits(IMAGES),
                               atol=1e-5, rtol=1e-5)


def test_pt2_with_preprocessing_gives_the_checkpoints_logits(upsized, tmp_path):
    (path,) = export_trained(upsized, "pt2", tmp_path / "net.pt2")
    extra = {PT2_METADATA_FILE: ""}
    program = torch.export.load(io.BytesIO(path.read_bytes()), extra_files=extra)
    assert json.loads(extra[PT2_METADATA_FILE])["mean"] == list(upsized.preprocessing.mean)
    with torch.no_grad():
        torch.testing.assert_close(program.module()(IMAGES), upsized.logits(IMAGES))


def test_pt2_without_preprocessing_takes_the_normalised_input(upsized, tmp_path):
    (path,) = export_trained(upsized, "pt2", tmp_path / "net.pt2", preprocess=False)
    program = torch.export.load(io.BytesIO(path.read_bytes()))
    prepared = upsized.preprocessing.batch_maker()(IMAGES)
    assert prepared.shape[-2:] == (16, 16)
    with torch.no_grad():
        torch.testing.assert_close(program.module()(prepared), upsized.logits(IMAGES))


def load_module(path):
    spec = importlib.util.spec_from_file_location(f"exported_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("fixture", ["upsized", "downsized"])
def test_the_python_export_loads_the_trained_network(fixture, request, tmp_path):
    trained = request.getfixturevalue(fixture)
    written = export_trained(trained, "py", tmp_path / "net.py")
    assert written == [tmp_path / "net.py", tmp_path / "net.pth"]
    module = load_module(tmp_path / "net.py")
    assert module.CLASS_NAMES == ["low", "mid", "high"] and module.IMAGE_SIZE == (10, 10)
    with torch.no_grad():
        logits = module.load_model()(module.preprocess(IMAGES))
    torch.testing.assert_close(logits, trained.logits(IMAGES))
    # Exported again, the weights beside it (ours) are replaced.
    assert export_trained(trained, "py", tmp_path / "net.py") == written


def test_the_python_export_never_replaces_a_file_that_is_not_ours(upsized, tmp_path):
    weights = weights_path_beside(tmp_path / "net.py")
    weights.write_bytes(b"my own notes")
    with pytest.raises(ExportError, match="net.pth exists and is not the weights of this "
                       "network; move it away or give --out another name"):
        export_trained(upsized, "py", tmp_path / "net.py")
    assert weights.read_bytes() == b"my own notes" and not (tmp_path / "net.py").exists()


def test_a_colour_image_is_read_as_grey_and_a_grey_one_as_colour(upsized, tmp_path):
    grey = tiny_data().test_images[0].numpy()
    as_grey = upsized.preprocessing.read(save_png(grey, tmp_path / "grey.png"))
    as_rgb_file = upsized.preprocessing.read(save_png(grey, tmp_path / "rgb.png", mode="RGB"))
    assert torch.equal(as_grey, as_rgb_file) and as_grey.shape == (1, 1, 10, 10)
    # A colour network reads a greyscale file as R = G = B.
    colour = Preprocessing(("a", "b"), (0.5,) * 3, (0.25,) * 3, (10, 10))
    read = colour.read(tmp_path / "grey.png")
    assert read.shape == (1, 3, 10, 10) and torch.equal(read[0, 0], read[0, 2])
    # Any size is brought to the dataset's.
    big = np.kron(grey, np.ones((1, 3, 3), np.uint8))
    assert upsized.preprocessing.read(save_png(big, tmp_path / "big.png")).shape == (1, 1, 10, 10)


def test_a_colour_checkpoint_classifies_files(tmp_path):
    rng = np.random.default_rng(0)
    labels = np.arange(60) % 2
    images = rng.integers(0, 255, (60, 3, 10, 10)).astype(np.uint8)
    images[labels == 1, 0] //= 4  # class 1 has little red
    data = make_bundle(images[:40], labels[:40], images[40:], labels[40:], ("red", "cyan"))
    Trainer(TINY, recipe(epochs=1), data=data, checkpoint_path=tmp_path / "c.pt").run()
    trained = load_trained(tmp_path / "c.pt")
    assert trained.arch.in_channels == 3
    (prediction,) = trained.classify([save_png(images[45], tmp_path / "x.png")], top=2)
    assert {name for name, _ in prediction.top} == {"red", "cyan"}
    assert sum(p for _, p in prediction.top) == pytest.approx(1.0)
