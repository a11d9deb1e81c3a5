"""Trained checkpoints for the tests of exports, predict and growth: the trainer's tiny
three-class network (10x10 greyscale images), trained for one epoch on the CPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from resnet_gui.engine.trainer import Trainer
from tests.engine.test_trainer import TINY, recipe, tiny_data


def train_checkpoint(path: Path, **changes) -> Path:
    """A checkpoint of TINY after one epoch (``changes`` go into the recipe)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        Trainer(TINY, recipe(**{"epochs": 1, **changes}), data=tiny_data(),
                checkpoint_path=path).run()
    finally:
        torch.set_num_threads(threads)
    return path


def save_png(array: np.ndarray, path: Path, mode: str | None = None) -> Path:
    """A uint8 (C, H, W) image as a PNG (lossless), optionally converted to ``mode``."""
    from PIL import Image

    image = Image.fromarray(array[0] if array.shape[0] == 1 else array.transpose(1, 2, 0))
    (image.convert(mode) if mode else image).save(path)
    return path
