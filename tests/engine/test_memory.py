"""Networks too large for the machine, or inputs too small for the network, are refused in one
sentence before any weight is allocated: by the trainer, the exporter and the Inspect tab."""

from __future__ import annotations

import pytest

from resnet_gui.engine import memory
from resnet_gui.engine.analysis import analyse
from resnet_gui.engine.export import export
from resnet_gui.engine.memory import bytes_to_train, physical_memory_bytes, require_memory
from resnet_gui.engine.trainer import Trainer
from resnet_gui.errors import ArchitectureError
from resnet_gui.arch.model import Stage
from resnet_gui.arch.presets import build_preset
from tests.engine.test_trainer import TINY, one_thread, recipe, tiny_data  # noqa: F401

# About 19 billion parameters (77 GB of float32 weights): valid, but no laptop holds it.
HUGE = TINY.replace(stages=(Stage(blocks=("basic",) * 4, width=16_384),))


def test_the_installed_memory_is_known_on_this_machine():
    assert physical_memory_bytes() > 1 << 30


def test_a_network_that_cannot_fit_is_refused_with_its_size(tmp_path, monkeypatch):
    monkeypatch.setattr(memory, "physical_memory_bytes", lambda: 8 << 30)
    with pytest.raises(ArchitectureError) as caught:
        export(HUGE, "onnx", tmp_path / "huge.onnx")
    message = str(caught.value)
    assert "parameters" in message and "8.0 GiB" in message and "narrower" in message
    assert "\n" not in message
    assert list(tmp_path.iterdir()) == []


def test_an_export_whose_example_batch_cannot_fit_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(memory, "physical_memory_bytes", lambda: 8 << 30)
    few_weights_huge_maps = TINY.replace(input_size=(4096, 4096))
    with pytest.raises(ArchitectureError, match="to export it with weights"):
        export(few_weights_huge_maps, "pt2", tmp_path / "big.pt2")
    assert list(tmp_path.iterdir()) == []


def test_the_trainer_refuses_a_network_too_large_before_building_it(monkeypatch):
    monkeypatch.setattr(memory, "physical_memory_bytes", lambda: 8 << 30)
    built = []
    monkeypatch.setattr("resnet_gui.engine.trainer.build_model",
                        lambda arch: built.append(arch))
    with pytest.raises(ArchitectureError, match="to train it at batch size 16"):
        Trainer(HUGE, recipe(epochs=1), data=tiny_data()).run()
    assert built == []


def test_the_training_estimate_grows_with_the_batch_and_fits_the_chapter_network():
    chapter = analyse(build_preset("d2l-resnet18", in_channels=1, num_classes=10,
                                   input_size=96))
    assert bytes_to_train(chapter, 256) > bytes_to_train(chapter, 128)
    require_memory(bytes_to_train(chapter, 128), "train it", chapter,
                   available=4 << 30)  # the chapter's run fits a small laptop: no error


def test_a_run_that_fits_a_16_gb_laptop_is_not_refused():
    # resnet50 at 224x224, batch 128, in fp32 peaks near 11.5 GiB of a 16 GB machine.
    resnet50 = analyse(build_preset("resnet50", in_channels=3, num_classes=1000,
                                    input_size=224))
    needed = bytes_to_train(resnet50, 128)
    assert needed < 11.5 * (1 << 30)
    require_memory(needed, "train it", resnet50, available=16 * 10**9)
    assert bytes_to_train(resnet50, 128, "bf16") < needed


def test_an_input_too_small_for_the_network_is_a_sentence_not_a_torch_error():
    # Three stride-2 stages after a stride-2 stem and max-pool: 10x10 images vanish.
    shrinking = TINY.replace(stages=tuple(Stage(blocks=("basic",), width=8, stride=2)
                                          for _ in range(3)),
                             stem=TINY.stem.__class__(kind="single", width=8, kernel=11,
                                                      stride=2, padding=0, max_pool=True))
    with pytest.raises(ArchitectureError) as caught:
        Trainer(shrinking, recipe(epochs=1), data=tiny_data()).run()
    assert str(caught.value).startswith("conv1: ") and "receives 10x10 maps" in str(caught.value)
