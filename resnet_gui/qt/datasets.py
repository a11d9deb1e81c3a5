"""The datasets the window offers: each fixes the network's input channels and classes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DatasetChoice:
    name: str
    channels: int
    classes: int
    image_size: int  # the images' own size; the network's input size may differ (resize)
    description: str


DATASETS: tuple[DatasetChoice, ...] = (
    DatasetChoice("Fashion-MNIST", 1, 10, 28, "70,000 greyscale 28x28 clothing images, 10 classes"),
    DatasetChoice("MNIST", 1, 10, 28, "70,000 greyscale 28x28 handwritten digits, 10 classes"),
    DatasetChoice("CIFAR-10", 3, 10, 32, "60,000 colour 32x32 photos, 10 classes"),
)
DEFAULT_DATASET = DATASETS[0]
BY_NAME = {dataset.name: dataset for dataset in DATASETS}


def dataset_named(name: str | None) -> DatasetChoice:
    return BY_NAME.get(name or "", DEFAULT_DATASET)
