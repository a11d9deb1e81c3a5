"""Tiny worlds for the Lab tab's tests: a learnable Fashion-MNIST-shaped dataset on disk (so
that checkpoints record where their test images are) and a small trained checkpoint."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from resnet_gui.arch.model import Architecture
from resnet_gui.arch.recipe import Recipe
from tests.engine.lab_support import LAB_TINY
from tests.engine.test_data import write_idx

# LAB_TINY (three identity blocks, a downsampling block with a projection, two more) for
# Fashion-MNIST's 28x28 images and ten classes.
TINY_28 = LAB_TINY.replace(num_classes=10, input_size=(28, 28))


def write_learnable_fashion_mnist(root: Path, train: int = 120, test: int = 60) -> Path:
    """Fashion-MNIST files under ``root`` whose classes a small network learns in seconds:
    class c has its own brightness (22c plus noise), which a global average
    pool tells apart. Returns ``root`` (the data folder)."""
    folder = root / "FashionMNIST" / "raw"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for prefix, count in (("train", train), ("t10k", test)):
        labels = np.arange(count) % 10
        images = rng.integers(0, 30, (count, 28, 28)) + 22 * labels[:, None, None]
        write_idx(folder / f"{prefix}-images-idx3-ubyte", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels)
    return root


def train_checkpoint(data_dir: Path, path: Path, arch: Architecture = TINY_28,
                     epochs: int = 5) -> Path:
    """Train ``arch`` on the data in ``data_dir`` and save its checkpoint at ``path``."""
    from resnet_gui.engine.data import load_data
    from resnet_gui.engine.trainer import Trainer

    recipe = Recipe(dataset="fashion-mnist", data_dir=str(data_dir), epochs=epochs,
                    batch_size=16, lr=0.05, momentum=0.9, schedule="cosine", augment=False,
                    seed=1, device="cpu", precision="fp32")
    end = Trainer(arch, recipe, data=load_data(recipe), checkpoint_path=path).run()
    assert end.reason == "completed" and Path(end.checkpoint).is_file()
    return path
