"""What each process of a distributed run does differently, checked without a process group:
its share of every batch (augmentation included), the loss weights that keep the gradient the
global batch's mean, the gathered evaluation, and how failures are told to the user."""

from __future__ import annotations

import json
import signal

import numpy as np
import pytest
import torch
from torch.distributed.elastic.multiprocessing.errors import ProcessFailure

from resnet_gui.commands.distributed import failure_summary
from resnet_gui.engine import distributed
from resnet_gui.engine.data import BatchMaker, augment_generator
from resnet_gui.engine.distributed import (
    PEER_LOST_EXIT,
    PeerLostError,
    World,
    collective_timeout,
    merge_evaluations,
    translated_errors,
)
from resnet_gui.engine.inspect import evaluate_model
from resnet_gui.engine.schedule import steps_in_epoch
from resnet_gui.errors import UserError


@pytest.mark.parametrize("count", [1, 7, 15, 16, 128, 129])
@pytest.mark.parametrize("size", [1, 2, 3, 8])
def test_the_shares_of_a_batch_are_disjoint_cover_it_and_differ_by_one_at_most(count, size):
    world = World(size=size)
    shares = [range(count)[world.share(count, rank)] for rank in range(size)]
    assert [i for share in shares for i in share] == list(range(count))  # in order, once each
    lengths = [len(share) for share in shares]
    assert max(lengths) - min(lengths) <= 1


@pytest.mark.parametrize("count, size", [(15, 2), (10, 3), (129, 8), (16, 4)])
def test_weighted_share_losses_average_to_the_global_batch_mean(count, size):
    losses = torch.rand(count, dtype=torch.float64)
    world = World(size=size)
    # What DDP computes: the mean over processes of each process's weighted share mean.
    averaged = sum(world.gradient_weight(len(part), count) * part.mean()
                   for part in (losses[world.share(count, rank)] for rank in range(size))) / size
    assert torch.isclose(averaged, losses.mean())


def test_the_shares_get_the_augmentation_the_whole_batch_would_get():
    images = torch.randint(0, 256, (12, 1, 10, 10), dtype=torch.uint8)
    maker = BatchMaker((0.5,), (0.25,), torch.device("cpu"), augment=True, crop_padding=2)
    whole = maker(images, augment_generator(7, 3))
    world = World(size=3)
    parts = [maker(images[world.share(12, rank)], augment_generator(7, 3),
                   (world.share(12, rank).start, 12)) for rank in range(3)]
    assert torch.equal(torch.cat(parts), whole)


def test_evaluations_of_consecutive_shares_merge_into_the_whole_sets():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 4))
    images = torch.randint(0, 256, (23, 1, 4, 4), dtype=torch.uint8)
    labels = torch.randint(0, 4, (23,))
    prepare = BatchMaker((0.5,), (0.25,), torch.device("cpu"))
    whole = evaluate_model(model, images, labels, prepare, 4, wrong_kept=5)
    world = World(size=3)
    parts = [(world.share(23, r).start,
              evaluate_model(model, images[world.share(23, r)], labels[world.share(23, r)],
                             prepare, 4, wrong_kept=5)) for r in (2, 0, 1)]  # any order
    merged = merge_evaluations(parts)
    assert merged.loss == pytest.approx(whole.loss, rel=1e-6)
    assert merged.accuracy == whole.accuracy
    for name in ("confusion", "predictions", "wrong_indices", "wrong_predicted",
                 "wrong_confidence", "per_class_accuracy"):
        np.testing.assert_array_equal(getattr(merged, name), getattr(whole, name), name)


def test_a_last_batch_smaller_than_the_processes_is_left_out_of_the_plan():
    assert steps_in_epoch(100, 32) == 4  # a rest of 4 trains on one process...
    assert steps_in_epoch(100, 32, smallest_last=8) == 3  # ...not on 8
    assert steps_in_epoch(97, 32) == 3 and steps_in_epoch(98, 32) == 4  # as before: no lone one
    assert steps_in_epoch(5, 32, smallest_last=8) == 1  # the only batch always trains


def test_a_batch_or_dataset_too_small_to_share_is_one_sentence():
    with pytest.raises(UserError, match="--batch-size 2 is the global batch, shared by 4"):
        World(size=4).check_batch(2, 100)
    with pytest.raises(UserError, match="3 training images cannot be shared by 4"):
        World(size=4).check_batch(8, 3)
    World().check_batch(1, 1)  # one process: nothing to share


def test_without_torchrun_the_world_is_one_process(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    world = distributed.join("auto")
    assert world.alone and world.is_main and distributed.current_world() == world
    single = {"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0"}
    assert distributed.join("cpu", environ=single).alone
    assert distributed.device_setting("cuda:1", world) == "cuda:1"  # left as the user said
    assert distributed.device_setting(None, World(1, 2, 1, "gloo")) == "cpu"
    assert distributed.device_setting("cuda", World(1, 2, 1, "nccl")) == "cuda:1"


def test_a_device_several_processes_cannot_share_is_refused(monkeypatch):
    environ = {"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"}
    with pytest.raises(UserError, match="names one GPU, but each of the 2 processes"):
        distributed.join("cuda:0", environ=environ)
    with pytest.raises(UserError, match="not on an Apple GPU"):
        distributed.join("mps", environ=environ)


def test_the_collective_timeout_comes_from_the_environment():
    assert collective_timeout({}).total_seconds() == 600
    assert collective_timeout({"RESNET_GUI_COLLECTIVE_TIMEOUT": "2.5"}).total_seconds() == 2.5
    with pytest.raises(UserError, match="is not a number of seconds above 0"):
        collective_timeout({"RESNET_GUI_COLLECTIVE_TIMEOUT": "soon"})


def test_a_lost_peer_is_one_sentence_and_other_errors_pass_through():
    gloo = RuntimeError("[/pytorch/third_party/gloo/gloo/transport/tcp/pair.cc:545] Read error "
                        "[127.0.0.1]:4242: Connection reset by peer. This is typically caused "
                        "by a remote worker hanging.")
    with pytest.raises(PeerLostError) as lost, translated_errors():
        raise gloo
    assert str(lost.value) == ("lost contact with another process of the run (Read error "
                               "[127.0.0.1]:4242: Connection reset by peer); the run ended, "
                               "and its last checkpoint is kept")
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"), translated_errors():
        raise RuntimeError("shapes cannot be multiplied")


def failure(tmp_path, rank: int, exitcode: int, message: str | None = None) -> ProcessFailure:
    """torchelastic's record of a failed process, with the error file ours would write."""
    path = tmp_path / f"error-{rank}.json"
    if message is not None:
        path.write_text(json.dumps({"message": {"message": message,
                                                "extraInfo": {"timestamp": "100"}}}))
    return ProcessFailure(local_rank=rank, pid=1000 + rank, exitcode=exitcode,
                          error_file=str(path))


def test_a_killed_process_is_named_not_the_ones_that_lost_it(tmp_path):
    checkpoint = tmp_path / "run.pt"
    checkpoint.write_bytes(b"saved")
    failures = {0: failure(tmp_path, 0, PEER_LOST_EXIT, "lost contact with another process"),
                1: failure(tmp_path, 1, -signal.SIGKILL),
                2: failure(tmp_path, 2, -signal.SIGTERM)}
    message, status = failure_summary(failures, 3, str(checkpoint))
    assert message == (f"process 1 of 3 was killed by SIGKILL; the other processes were "
                       f"stopped and the checkpoint {checkpoint} from its last save is kept")
    assert status == 1
    failures = {0: failure(tmp_path, 0, PEER_LOST_EXIT, "lost contact with another process"),
                1: failure(tmp_path, 1, -signal.SIGSEGV)}
    assert failure_summary(failures, 2, str(tmp_path / "none.pt"))[0] == (
        "process 1 of 2 was killed by SIGSEGV; the other processes were stopped and no "
        "checkpoint had been saved yet")


def test_a_process_that_failed_with_a_sentence_speaks_for_the_run(tmp_path):
    failures = {0: failure(tmp_path, 0, PEER_LOST_EXIT, "lost contact with another process"),
                1: failure(tmp_path, 1, 1, "training diverged: the loss became NaN")}
    assert failure_summary(failures, 2, None) == (
        "process 1 of 2: training diverged: the loss became NaN", 1)
    failures = {0: failure(tmp_path, 0, 1, "Fashion-MNIST is not in /data"),
                1: failure(tmp_path, 1, -signal.SIGTERM)}  # stopped by torchrun after it
    assert failure_summary(failures, 2, None) == ("Fashion-MNIST is not in /data", 1)


def test_the_same_mistake_in_every_process_is_said_once_and_a_stop_not_at_all(tmp_path):
    same = {rank: failure(tmp_path, rank, 1, "the data folder x does not exist")
            for rank in (0, 1)}
    assert failure_summary(same, 2, None) == ("the data folder x does not exist", 1)
    stopped = {rank: failure(tmp_path, rank, 130) for rank in (0, 1)}
    assert failure_summary(stopped, 2, None) == ("", 130)
