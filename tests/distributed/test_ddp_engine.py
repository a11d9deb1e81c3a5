"""The real training loop on two gloo processes over loopback (see ddp_support.py): one run,
the same weights everywhere, the whole run's figures in every process, rank 0's checkpoint in
the single-process format, and stop and pause agreed on by all."""

from __future__ import annotations

import numpy as np
import pytest

from resnet_gui.engine.checkpoint import load_checkpoint
from resnet_gui.engine.trainer import Trainer, steps_in_epoch
from tests.distributed.ddp_support import PAUSE_SECONDS, launch_two, train_tiny
from tests.engine.test_trainer import TINY, recipe, tiny_data

pytestmark = pytest.mark.timeout(300)  # a hung collective fails the test, not CI
STEPS = 2 * steps_in_epoch(90, 15)  # train_tiny: 2 epochs of 90 images, global batch 15


def test_two_processes_train_one_network_and_report_the_whole_run(tmp_path):
    checkpoint = tmp_path / "run.pt"
    zero, one = (launch_two(train_tiny, str(checkpoint))[rank] for rank in (0, 1))
    assert (zero["size"], zero["rank"], one["rank"]) == (2, 0, 1)
    assert zero["same"] and one["same"]  # checked by the processes themselves...
    assert zero["weights"].keys() == one["weights"].keys()
    for name, value in zero["weights"].items():  # ...and here, tensor by tensor
        np.testing.assert_array_equal(value, one["weights"][name], err_msg=name)
    # Loss and accuracy are summed over the processes: both saw the same figures.
    assert [s[:2] for s in zero["steps"]] == [s[:2] for s in one["steps"]]
    assert zero["epochs"] == one["epochs"] and len(zero["epochs"]) == 2
    assert zero["end"].step == one["end"].step == STEPS
    assert zero["end"].test_accuracy == one["end"].test_accuracy
    assert zero["confusion"].sum() == 30  # the two halves of the test set, gathered
    np.testing.assert_array_equal(zero["confusion"], one["confusion"])

    saved = load_checkpoint(checkpoint)  # rank 0's, holding the weights both processes hold
    for name, value in saved["model"].items():
        np.testing.assert_array_equal(value.numpy(), zero["weights"][name], err_msg=name)
    assert (saved["epoch"], saved["position"], saved["step"]) == (2, 0, STEPS)
    single = tmp_path / "single.pt"
    Trainer(TINY, recipe(epochs=1, batch_size=15), checkpoint_path=single,
            data=tiny_data()).run()
    assert saved.keys() == load_checkpoint(single).keys()  # the single-process format


def test_a_pause_or_stop_in_one_process_holds_every_process(tmp_path):
    checkpoint = tmp_path / "run.pt"
    zero, one = (launch_two(train_tiny, str(checkpoint), True)[rank] for rank in (0, 1))
    # Rank 1 paused after step 2: rank 0 waited with it (agreeing, not stuck in a collective).
    assert zero["held"] >= 1 and one["held"] >= 1
    moments = {step: moment for step, _, moment in zero["steps"]}
    assert moments[3] - moments[2] >= PAUSE_SECONDS - 0.1
    # Rank 1 asked to stop after step 4: both ended there, and rank 0 saved it.
    assert zero["end"].reason == one["end"].reason == "stopped"
    assert zero["end"].step == one["end"].step == 4
    assert load_checkpoint(checkpoint)["step"] == 4
    assert zero["same"] and one["same"]
