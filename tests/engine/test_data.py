"""Datasets: where they are looked for, what the user is told when they are missing or damaged,
the bundled sample, image folders, and batches made from in-memory tensors."""

from __future__ import annotations

import gzip
import struct
import warnings

import numpy as np
import pytest
import torch

from resnet_gui.engine import data as data_module
from resnet_gui.engine.data import (
    DATA_ENV,
    FASHION_MNIST,
    BatchMaker,
    augment_generator,
    balanced_subset,
    default_data_dir,
    epoch_order,
    load_data,
    load_sample,
    make_bundle,
    preprocess,
    read_idx,
)
from resnet_gui.errors import DataError
from resnet_gui.arch.recipe import Recipe
from tests.conftest import SHARED_DATA


def write_idx(path, array: np.ndarray, compress: bool = False) -> None:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(
        f">{array.ndim}I", *array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    if compress:
        with gzip.open(path, "wb") as handle:
            handle.write(payload)
    else:
        path.write_bytes(payload)


def write_fashion_mnist(folder, train=40, test=20, compress=False):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    suffix = ".gz" if compress else ""
    for prefix, count in (("train", train), ("t10k", test)):
        write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}",
                  rng.integers(0, 256, (count, 28, 28)), compress)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", np.arange(count) % 10, compress)


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No network, no configured folder, and a per-user folder inside tmp_path."""
    attempts = []

    def no_network(class_name, root):
        attempts.append((class_name, root))
        return "no network"

    monkeypatch.setattr(data_module, "download_torchvision", no_network)
    monkeypatch.delenv(DATA_ENV, raising=False)
    monkeypatch.setattr(data_module, "user_data_dir", lambda: tmp_path / "user")
    return attempts


def test_data_folder_comes_from_option_then_environment_then_user_folder(monkeypatch, tmp_path):
    monkeypatch.setattr(data_module, "user_data_dir", lambda: tmp_path / "user")
    monkeypatch.delenv(DATA_ENV, raising=False)
    assert default_data_dir() == tmp_path / "user" / "data"
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "env"))
    assert default_data_dir() == tmp_path / "env"
    assert default_data_dir(str(tmp_path / "given")) == tmp_path / "given"


def test_missing_dataset_offline_names_folder_files_and_the_fix(offline, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError) as caught:
        load_data(Recipe(dataset="mnist", data_dir=str(empty)))
    message = str(caught.value)
    assert str(empty / "MNIST" / "raw") in message
    assert "train-images-idx3-ubyte" in message and "t10k-labels-idx1-ubyte" in message
    assert "--data-dir" in message and DATA_ENV in message and "no network" in message
    assert "\n" not in message
    assert offline  # a download was tried


def test_missing_cifar10_offline_names_its_folder_and_files(offline, tmp_path):
    with pytest.raises(DataError) as caught:
        load_data(Recipe(dataset="cifar10", data_dir=str(tmp_path)))
    message = str(caught.value)
    assert str(tmp_path / "cifar-10-batches-py") in message
    assert "data_batch_1" in message and "test_batch" in message and "--data-dir" in message
    assert offline == [("CIFAR10", tmp_path)]


def test_explicit_data_dir_without_fashion_mnist_is_an_error_not_the_sample(offline, tmp_path):
    (tmp_path / "nothing-here").mkdir()
    with pytest.raises(DataError, match="Fashion-MNIST is not in"):
        load_data(Recipe(data_dir=str(tmp_path / "nothing-here")))


def test_environment_folder_without_the_data_is_an_error_too(offline, tmp_path, monkeypatch):
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "env"))
    with pytest.raises(DataError, match="env"):
        load_data(Recipe())


def test_nothing_configured_and_offline_trains_on_the_bundled_sample_and_says_so(offline):
    bundle = load_data(Recipe())
    assert bundle.source == "the bundled sample"
    assert "bundled sample" in bundle.notice and "could not be downloaded" in bundle.notice


def test_bundled_sample_is_real_balanced_and_small():
    from resnet_gui.resources import resource_path

    assert resource_path("fashion-mnist-sample.npz").stat().st_size <= 5 * 1024 * 1024
    bundle = load_sample()
    assert bundle.num_train >= 2000 and bundle.num_test == 1000
    assert bundle.train_images.shape[1:] == (1, 28, 28)
    assert bundle.train_images.dtype == torch.uint8
    assert torch.bincount(bundle.train_labels).tolist() == [bundle.num_train // 10] * 10
    assert torch.bincount(bundle.test_labels).tolist() == [100] * 10
    assert bundle.class_names == FASHION_MNIST.class_names
    # Real Fashion-MNIST pixels, not noise: the published mean and std, within sampling error.
    assert bundle.mean[0] == pytest.approx(0.286, abs=0.01)
    assert bundle.std[0] == pytest.approx(0.353, abs=0.01)


@pytest.mark.parametrize("compress", [False, True], ids=["idx", "idx.gz"])
def test_idx_files_load_from_torchvision_layout(tmp_path, compress):
    write_fashion_mnist(tmp_path / "FashionMNIST" / "raw", compress=compress)
    bundle = load_data(Recipe(data_dir=str(tmp_path)))
    assert (bundle.num_train, bundle.num_test, bundle.channels) == (40, 20, 1)
    assert bundle.notice is None and bundle.train_labels[:3].tolist() == [0, 1, 2]


@pytest.mark.parametrize("damage", ["truncated", "bad-magic", "label-count"])
def test_a_corrupt_idx_file_is_a_clear_data_error(tmp_path, damage):
    folder = tmp_path / "FashionMNIST" / "raw"
    write_fashion_mnist(folder)
    images = folder / "train-images-idx3-ubyte"
    if damage == "truncated":
        images.write_bytes(images.read_bytes()[:-100])
        expected = "is corrupt: its header promises"
    elif damage == "bad-magic":
        images.write_bytes(b"\x1f\x8b" + images.read_bytes()[2:])
        expected = "is not an IDX file"
    else:
        write_idx(folder / "train-labels-idx1-ubyte", np.zeros(39))
        expected = "has 40 images but"
    with pytest.raises(DataError, match=expected) as caught:
        load_data(Recipe(data_dir=str(tmp_path)))
    assert "train-" in str(caught.value) and "again" in str(caught.value)


def test_read_idx_rejects_a_damaged_gzip(tmp_path):
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(DataError, match="cannot read"):
        read_idx(path)


def _write_png(path, value, size=(9, 7), mode="L"):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    colour = value if mode == "L" else (value, 255 - value, 40)
    Image.new(mode, size, colour).save(path)


def test_image_folder_is_split_per_class_by_seed(tmp_path):
    for label, name in enumerate(("cats", "dogs", "owls")):
        for index in range(10):
            _write_png(tmp_path / name / f"{index}.png", 20 * label + index)
    recipe = Recipe(dataset=f"folder:{tmp_path}", seed=1)
    bundle = load_data(recipe)
    assert bundle.class_names == ("cats", "dogs", "owls")
    assert (bundle.num_train, bundle.num_test) == (24, 6)
    assert torch.bincount(bundle.test_labels).tolist() == [2, 2, 2]
    assert bundle.train_images.shape[1:] == (1, 7, 9)  # grey images: one channel, H x W
    again = load_data(recipe)
    assert torch.equal(bundle.test_images, again.test_images)
    other = load_data(recipe.replace(seed=2))
    assert not torch.equal(bundle.test_images, other.test_images)


def test_image_folder_with_train_and_test_folders_resizes_to_the_common_size(tmp_path):
    for split, count in (("train", 4), ("test", 2)):
        for name in ("a", "b"):
            for index in range(count):
                _write_png(tmp_path / split / name / f"{index}.png", 100, mode="RGB")
    _write_png(tmp_path / "train" / "a" / "odd.png", 50, size=(20, 20), mode="RGB")
    bundle = load_data(Recipe(dataset=f"folder:{tmp_path}"))
    assert (bundle.num_train, bundle.num_test, bundle.channels) == (9, 4, 3)
    assert bundle.image_size == (7, 9)


def test_image_folder_problems_are_one_sentence(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_data(Recipe(dataset=f"folder:{tmp_path / 'missing'}"))
    (tmp_path / "only").mkdir()
    _write_png(tmp_path / "only" / "x.png", 3)
    with pytest.raises(DataError, match="at least two classes"):
        load_data(Recipe(dataset=f"folder:{tmp_path}"))
    (tmp_path / "second").mkdir()
    (tmp_path / "second" / "broken.png").write_bytes(b"not a png")
    _write_png(tmp_path / "second" / "ok.png", 3)
    _write_png(tmp_path / "only" / "y.png", 3)
    with pytest.raises(DataError, match="broken.png"):
        load_data(Recipe(dataset=f"folder:{tmp_path}"))
    (tmp_path / "second" / "broken.png").unlink()
    (tmp_path / "third").mkdir()
    (tmp_path / "third" / "notes.txt").write_text("no images here")
    with pytest.raises(DataError, match=f"class folder {tmp_path / 'third'} holds no images"):
        load_data(Recipe(dataset=f"folder:{tmp_path}"))


def test_limits_take_a_class_balanced_subset():
    labels = torch.tensor([0] * 50 + [1] * 30 + [2] * 20)
    chosen = balanced_subset(labels, 30, seed=0)
    assert len(chosen) == 30 and len(set(chosen.tolist())) == 30
    assert torch.bincount(labels[chosen]).tolist() == [10, 10, 10]
    assert torch.equal(chosen, balanced_subset(labels, 30, seed=0))


def _bundle():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (64, 3, 8, 8)).astype(np.uint8)
    return make_bundle(images, np.arange(64) % 4, images[:16], np.arange(16) % 4, "abcd")


def test_batches_are_normalised_resized_and_augmented_deterministically():
    bundle = _bundle()
    plain = BatchMaker.for_bundle(bundle, Recipe(augment=False, channels_last=False), "cpu")
    batch = plain(bundle.train_images[:32])
    assert batch.dtype == torch.float32 and batch.shape == (32, 3, 8, 8)
    assert batch.mean(dim=(0, 2, 3)).abs().max() < 0.1  # normalised with the set's statistics
    resized = BatchMaker.for_bundle(bundle, Recipe(resize=20, augment=False), "cpu")
    out = resized(bundle.train_images[:4])
    assert out.shape == (4, 3, 20, 20) and out.is_contiguous(memory_format=torch.channels_last)

    augmenting = BatchMaker.for_bundle(bundle, Recipe(augment=True, channels_last=False), "cpu")
    first = augmenting(bundle.train_images[:32], augment_generator(0, 5))
    again = augmenting(bundle.train_images[:32], augment_generator(0, 5))
    other = augmenting(bundle.train_images[:32], augment_generator(0, 6))
    assert torch.equal(first, again) and not torch.equal(first, other)
    assert not torch.equal(first, batch)
    # A crop shifts the image inside its padding; the padding shows the normalised black.
    black = (0 - bundle.mean[0]) / bundle.std[0]
    def black_share(x):
        return ((x[:, 0] - black).abs() < 1e-5).float().mean().item()

    assert black_share(first) > black_share(batch) + 0.02


def test_a_flip_without_shift_mirrors_the_image():
    bundle = _bundle()
    maker = BatchMaker.for_bundle(bundle, Recipe(augment=True, crop_padding=0,
                                                  channels_last=False), "cpu")
    images = bundle.train_images[:64]
    flipped = maker(images, augment_generator(1, 0))
    plain = maker(images)
    mirrored = [torch.equal(flipped[i], plain[i].flip(-1)) for i in range(64)]
    unchanged = [torch.equal(flipped[i], plain[i]) for i in range(64)]
    assert all(m or u for m, u in zip(mirrored, unchanged))
    assert 10 < sum(mirrored) < 54


def test_one_channel_batches_have_standard_strides():
    bundle = make_bundle(np.zeros((8, 6, 6), np.uint8), np.arange(8) % 2,
                         np.zeros((2, 6, 6), np.uint8), [0, 1], "ab")
    maker = BatchMaker.for_bundle(bundle, Recipe(augment=True), "cpu")
    batch = maker(bundle.train_images, augment_generator(0, 0))
    assert batch.stride() == (36, 36, 6, 1)


def test_epoch_order_is_a_function_of_seed_and_epoch():
    assert torch.equal(epoch_order(100, 1, 3), epoch_order(100, 1, 3))
    assert not torch.equal(epoch_order(100, 1, 3), epoch_order(100, 1, 4))
    assert sorted(epoch_order(100, 1, 3).tolist()) == list(range(100))


def test_preprocess_gives_the_network_input_of_test_images():
    bundle = _bundle()
    images = preprocess(bundle, bundle.test_images[:2], Recipe(resize=16))
    assert images.shape == (2, 3, 16, 16) and images.dtype == torch.float32


@pytest.mark.skipif(not (SHARED_DATA / "FashionMNIST" / "raw").is_dir(),
                    reason="the real Fashion-MNIST copy is not on this machine")
def test_real_fashion_mnist_loads_from_the_shared_folder():
    bundle = load_data(Recipe(data_dir=str(SHARED_DATA), limit_train=1000, limit_test=500))
    assert (bundle.num_train, bundle.num_test) == (1000, 500)
    assert torch.bincount(bundle.train_labels).tolist() == [100] * 10
    full = load_data(Recipe(data_dir=str(SHARED_DATA)))
    assert (full.num_train, full.num_test) == (60000, 10000)
    assert full.mean[0] == pytest.approx(0.2860, abs=1e-3)


def test_an_image_within_pils_pixel_limit_loads_without_a_warning(tmp_path, monkeypatch):
    from PIL import Image

    for name in ("a", "b"):
        for index in range(3):
            _write_png(tmp_path / name / f"{index}.png", 3)
    _write_png(tmp_path / "a" / "large.png", 3, size=(30, 20))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 400)  # 600 pixels: PIL warns, under 2x
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bundle = load_data(Recipe(dataset=f"folder:{tmp_path}"))
    assert bundle.num_train + bundle.num_test == 7
