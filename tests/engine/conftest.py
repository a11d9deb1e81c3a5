"""Fixtures of the lab's engine tests."""

import pytest
import torch

from tests.engine.lab_support import train_tiny


@pytest.fixture(scope="module")
def trained():
    """(model, data, recipe) of the lab's tiny network, trained once per test module."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return train_tiny()
    finally:
        torch.set_num_threads(previous)
