"""The datasets the window offers: each fixes the network's input channels and classes.

The rows are the spec's table (:mod:`resnet_gui.arch.datasets`); the window calls a dataset
by its ``name`` ("Fashion-MNIST"), which is also what its settings remember.
"""

from __future__ import annotations

from resnet_gui.arch.datasets import BY_NAME, DATASETS, DEFAULT_DATASET
from resnet_gui.arch.datasets import Dataset as DatasetChoice

__all__ = ["BY_NAME", "DATASETS", "DEFAULT_DATASET", "DatasetChoice", "dataset_named"]


def dataset_named(name: str | None) -> DatasetChoice:
    return BY_NAME.get(name or "", DEFAULT_DATASET)
