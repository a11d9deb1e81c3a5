"""Feature maps through hooks, mosaics, and the evaluation the window shows after a run."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from resnet_gui.engine.inspect import evaluate_model, feature_maps, mosaic
from resnet_gui.engine.model import build_model
from resnet_gui.errors import UserError
from tests.engine.test_trainer import TINY, one_thread  # noqa: F401


def test_feature_maps_equal_the_layer_output_even_before_an_inplace_relu():
    torch.manual_seed(0)
    model = build_model(TINY)
    model.train()
    images = torch.randn(2, 1, 10, 10)
    maps = feature_maps(model, images, "bn1")  # relu(inplace=True) runs right after bn1
    model.eval()
    with torch.no_grad():
        expected = model.bn1(model.conv1(images)).numpy()
    assert maps.shape == (2, 8, 10, 10) and maps.dtype == np.float32
    np.testing.assert_allclose(maps, expected, rtol=1e-5, atol=1e-6)
    assert (maps < 0).any()  # captured before the ReLU overwrote it
    assert model.training is False  # we set it; feature_maps restores what it found
    model.train()
    feature_maps(model, images, "layer2.0.conv1")
    assert model.training


def test_vector_outputs_come_back_as_one_by_one_maps():
    model = build_model(TINY)
    maps = feature_maps(model, torch.randn(3, 1, 10, 10), "fc")
    assert maps.shape == (3, 3, 1, 1)


def test_an_unknown_layer_suggests_the_closest_name():
    with pytest.raises(UserError, match="did you mean 'layer2.0.downsample'"):
        feature_maps(build_model(TINY), torch.randn(1, 1, 10, 10), "layer2.0.downsampel")


def test_mosaic_tiles_channels_row_major_with_padding():
    maps = np.stack([np.full((2, 3), float(i)) for i in range(5)])
    tiled = mosaic(maps, columns=3, pad=1)
    assert tiled.shape == (2 * 2 + 1, 3 * 3 + 2) and tiled.dtype == np.float32
    assert tiled[0, 0] == 0 and tiled[0, 4] == 1 and tiled[0, 8] == 2
    assert tiled[3, 0] == 3 and tiled[3, 4] == 4
    assert np.isnan(tiled[2, 0]) and np.isnan(tiled[0, 3])  # padding
    assert np.isnan(tiled[3, 8])  # the empty sixth tile
    square = mosaic(np.zeros((16, 4, 4)), pad=0)
    assert square.shape == (16, 16)
    scaled = mosaic(np.stack([np.arange(4.0).reshape(2, 2), np.full((2, 2), 7.0)]),
                    normalise=True, pad=0)
    assert scaled[:, :2].max() == 1.0 and scaled[:, 2:].max() == 0.0


def test_evaluation_counts_every_image_once():
    class Fixed(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.zeros(1))

        def forward(self, x):  # predicts class = first pixel, with confidence from pixel 2
            logits = torch.full((x.shape[0], 3), -5.0)
            logits[torch.arange(x.shape[0]), x[:, 0, 0, 0].long()] = x[:, 0, 0, 1]
            return logits

    images = torch.zeros(6, 1, 2, 2)
    images[:, 0, 0, 0] = torch.tensor([0, 1, 2, 2, 0, 1])
    images[:, 0, 0, 1] = torch.tensor([1, 2, 3, 9, 4, 5])
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    evaluation = evaluate_model(Fixed(), images, labels, lambda x: x.float(), 3, batch_size=4)
    assert evaluation.accuracy == pytest.approx(0.5)
    assert evaluation.confusion.tolist() == [[1, 0, 1], [1, 1, 0], [0, 1, 1]]
    assert evaluation.per_class_accuracy.tolist() == [0.5, 0.5, 0.5]
    assert evaluation.wrong_indices.tolist() == [3, 5, 4]  # by confidence: 9, 5, 4
    assert evaluation.wrong_predicted.tolist() == [2, 1, 0]


def test_test_time_flips_average_each_image_with_its_mirror():
    """A network that reads only the left column: alone it is right on one image of two;
    with its mirror image averaged in, the right column's evidence outweighs where it is
    stronger."""
    class LeftColumn(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.zeros(1))

        def forward(self, x):  # logit of class 1 = left pixel, of class 0 = 0
            return torch.stack([torch.zeros(x.shape[0]), x[:, 0, 0, 0]], dim=1)

    images = torch.tensor([[[[1.0, -3.0]]], [[[-1.0, 3.0]]]])  # left and right disagree
    labels = torch.tensor([0, 1])  # the right column is the truth
    plain = evaluate_model(LeftColumn(), images, labels, lambda x: x, 2)
    flipped = evaluate_model(LeftColumn(), images, labels, lambda x: x, 2, flip=True)
    assert plain.accuracy == 0.0 and flipped.accuracy == 1.0
    # mean logits (0, (1 - 3) / 2) and (0, (-1 + 3) / 2): each right by a margin of 1
    assert flipped.loss == pytest.approx(float(F.cross_entropy(
        torch.tensor([[0.0, -1.0], [0.0, 1.0]]), labels)))
