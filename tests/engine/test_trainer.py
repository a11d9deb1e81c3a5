"""The trainer on tiny generated data, on the CPU: events, control, divergence, resume."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest
import torch

from resnet_gui.engine.data import make_bundle
from resnet_gui.engine.events import Callback, EpochEnd, StepEnd, TrainEnd, TrainStart
from resnet_gui.engine.trainer import DivergedError, LearningRatePlan, Trainer, steps_in_epoch
from resnet_gui.errors import TrainingError, UserError
from resnet_gui.arch.model import Architecture, Head, Stage, Stem
from resnet_gui.arch.recipe import Recipe

TINY = Architecture(
    stages=(Stage(blocks=("basic",), width=8, stride=1), Stage(blocks=("basic",), width=12, stride=2)),
    stem=Stem(kind="single", width=8, kernel=3, stride=1, max_pool=False),
    head=Head(pool="avg", dropout=0.25),  # dropout draws from the global RNG: resume must restore it
    in_channels=1, input_size=(10, 10), num_classes=3, name="tiny",
)


def tiny_data(train: int = 90, test: int = 30, seed: int = 0):
    """Three classes of 10x10 images, each brighter in its own band of rows."""
    rng = np.random.default_rng(seed)

    def make(count):
        labels = np.arange(count) % 3
        images = rng.integers(0, 90, (count, 10, 10)).astype(np.uint8)
        for index, label in enumerate(labels):
            images[index, 3 * label:3 * label + 4] += 120
        return images, labels

    return make_bundle(*make(train), *make(test), ("low", "mid", "high"))


def recipe(**changes) -> Recipe:
    base = Recipe(epochs=3, batch_size=16, lr=0.1, momentum=0.9, schedule="onecycle",
                  weight_decay=5e-4, label_smoothing=0.1, augment=True, seed=3, device="cpu")
    return base.replace(**changes)


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors run fastest on one thread, and the timing of other jobs cannot disturb
    them."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


class Recorder(Callback):
    def __init__(self):
        self.events = []
        self.notices = []

    def on_train_start(self, event):
        self.events.append(event)

    def on_batch_end(self, event):
        self.events.append(event)

    def on_epoch_end(self, event):
        self.events.append(event)

    def on_train_end(self, event):
        self.events.append(event)

    def on_exception(self, error):
        self.events.append(error)

    def on_notice(self, message):
        self.notices.append(message)

    def of(self, kind):
        return [event for event in self.events if isinstance(event, kind)]


def state_equal(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_events_arrive_in_order_with_plain_data():
    data = tiny_data()
    recorder = Recorder()
    end = Trainer(TINY, recipe(), callbacks=[recorder], data=data).run()
    kinds = [type(event) for event in recorder.events]
    assert kinds[0] is TrainStart and kinds[-1] is TrainEnd
    epoch_positions = [i for i, kind in enumerate(kinds) if kind is EpochEnd]
    assert len(epoch_positions) == 3
    # Every epoch's last step is reported before its EpochEnd.
    for position in epoch_positions:
        assert kinds[position - 1] is StepEnd
    start = recorder.of(TrainStart)[0]
    assert start.steps_per_epoch == steps_in_epoch(90, 16) == 6
    assert start.total_steps == 18 and start.input_shape == (1, 10, 10)
    steps = recorder.of(StepEnd)
    assert steps[-1].step == 18 and [s.step for s in steps] == sorted(s.step for s in steps)
    epochs = recorder.of(EpochEnd)
    assert [e.epoch for e in epochs] == [0, 1, 2]
    for event in steps + epochs + [end]:
        for name, value in vars(event).items():
            assert not isinstance(value, torch.Tensor), name
    evaluation = epochs[-1].evaluation
    assert evaluation.confusion.sum() == 30 and evaluation.confusion.shape == (3, 3)
    assert math.isclose(evaluation.accuracy, np.trace(evaluation.confusion) / 30)
    assert end.reason == "completed" and end.epoch == 3 and end.step == 18
    assert end.test_accuracy == epochs[-1].test_accuracy
    assert end.test_accuracy > 0.6  # the bands are easy: the network learns something
    assert math.isfinite(end.examples_per_sec) and end.examples_per_sec > 0


def test_step_events_are_throttled_but_the_last_step_is_always_reported():
    data = tiny_data(train=600)
    recorder = Recorder()
    end = Trainer(TINY, recipe(epochs=1, batch_size=4), callbacks=[recorder], data=data).run()
    steps = recorder.of(StepEnd)
    assert steps[-1].step == end.step == 150
    assert len(steps) <= 30 * end.seconds + 3


def test_stop_from_another_thread_ends_at_a_batch_boundary_with_a_checkpoint(tmp_path):
    data = tiny_data()
    stopped_at = {}

    class StopAfterFour(Callback):
        def __init__(self):
            self.trainer = None

        def on_batch_end(self, event):
            if event.step >= 4 and not stopped_at:
                stopped_at["step"] = event.step
                threading.Thread(target=self.trainer.request_stop).start()

    stopper = StopAfterFour()
    trainer = Trainer(TINY, recipe(), callbacks=[stopper], data=data,
                      checkpoint_path=tmp_path / "run.pt")
    stopper.trainer = trainer
    trainer.report_interval = 0
    end = trainer.run()
    assert end.reason == "stopped"
    assert stopped_at["step"] <= end.step <= stopped_at["step"] + 2
    assert end.checkpoint == str(tmp_path / "run.pt")
    assert (tmp_path / "run.pt").is_file()


def test_pause_holds_the_loop_until_resume():
    data = tiny_data()
    trainer_box = {}
    progress = []

    class PauseAtTwo(Callback):
        def on_batch_end(self, event):
            progress.append(event.step)
            if event.step == 2:
                trainer_box["t"].pause()

    trainer = Trainer(TINY, recipe(epochs=1), callbacks=[PauseAtTwo()], data=data)
    trainer_box["t"] = trainer
    trainer.report_interval = 0
    thread = threading.Thread(target=trainer.run)
    thread.start()
    for _ in range(200):
        if trainer.paused:
            break
        threading.Event().wait(0.01)
    threading.Event().wait(0.3)
    assert trainer.paused and thread.is_alive()
    assert max(progress) == 2  # nothing ran while paused
    trainer.resume()
    thread.join(timeout=60)
    assert not thread.is_alive() and max(progress) == 6


def test_nan_loss_stops_with_epoch_batch_last_loss_and_advice(tmp_path):
    data = tiny_data()
    recorder = Recorder()

    class Poison(Callback):
        def __init__(self):
            self.trainer = None

        def on_batch_end(self, event):
            if event.step == 8:  # epoch 2, batch 2 done: the next step's loss is NaN
                with torch.no_grad():
                    self.trainer.model.fc.weight.fill_(float("nan"))

    poison = Poison()
    checkpoint = tmp_path / "run.pt"
    trainer = Trainer(TINY, recipe(), callbacks=[recorder, poison], data=data,
                      checkpoint_path=checkpoint)
    poison.trainer = trainer
    trainer.report_interval = 0
    with pytest.raises(DivergedError) as caught:
        trainer.run()
    error = caught.value
    assert isinstance(error, TrainingError) and isinstance(error, UserError)
    assert (error.epoch, error.batch) == (1, 3)
    assert error.last_finite_loss is not None and math.isfinite(error.last_finite_loss)
    message = str(error)
    assert "epoch 2, batch 3" in message and "lower the learning rate" in message
    assert f"{error.last_finite_loss:.4g}" in message and "NaN" in message
    assert str(checkpoint) in message  # the good checkpoint of epoch 1 is kept
    assert recorder.events[-1] is error  # on_exception ran before the raise
    saved = torch.load(checkpoint, weights_only=True)
    assert saved["epoch"] == 1 and torch.isfinite(saved["model"]["fc.weight"]).all()


def _run_to_end(data, tmp_path, name, **changes):
    trainer = Trainer(TINY, recipe(**changes), data=data, checkpoint_path=tmp_path / name)
    return trainer, trainer.run()


@pytest.mark.parametrize("stop_step", [6, 8], ids=["epoch-end", "mid-epoch"])
def test_resume_reproduces_the_uninterrupted_run_bit_for_bit(tmp_path, stop_step):
    data = tiny_data()
    whole, whole_end = _run_to_end(data, tmp_path, "whole.pt")

    first, first_end = _run_to_end(data, tmp_path, "part.pt", max_steps=stop_step)
    assert first_end.reason == "max_steps" and first_end.step == stop_step
    recorder = Recorder()
    resumed = Trainer(TINY, recipe(), callbacks=[recorder], data=data,
                      checkpoint_path=tmp_path / "part.pt", resume_from=tmp_path / "part.pt")
    resumed_end = resumed.run()
    start = recorder.of(TrainStart)[0]
    assert start.start_step == stop_step
    assert resumed_end.reason == "completed" and resumed_end.step == whole_end.step
    assert state_equal(whole.model, resumed.model)
    assert resumed_end.train_loss == whole_end.train_loss
    assert resumed_end.test_accuracy == whole_end.test_accuracy


def test_max_steps_keeps_the_plan_of_all_epochs():
    data = tiny_data()
    recorder = Recorder()
    trainer = Trainer(TINY, recipe(max_steps=5), callbacks=[recorder], data=data)
    trainer.report_interval = 0
    trainer.run()
    plan = LearningRatePlan(recipe())
    last = recorder.of(StepEnd)[-1]
    assert last.step == 5
    assert last.lr == pytest.approx(plan.lr(4 * 16 / 90))  # step 5 starts at example 64 of 90


def test_seed_makes_a_run_repeatable_and_another_seed_differs():
    data = tiny_data()
    a = Trainer(TINY, recipe(epochs=1), data=data)
    b = Trainer(TINY, recipe(epochs=1), data=data)
    c = Trainer(TINY, recipe(epochs=1, seed=4), data=data)
    for trainer in (a, b, c):
        trainer.run()
    assert state_equal(a.model, b.model)
    assert not state_equal(a.model, c.model)


def test_out_of_memory_retries_at_a_smaller_batch_down_to_a_floor():
    data = tiny_data()
    recorder = Recorder()

    def run_with_memory_limit(trainer, limit):
        def refuse_big_batches(module, inputs):
            if inputs[0].shape[0] > limit and module.training:
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")

        handle = torch.nn.modules.module.register_module_forward_pre_hook(refuse_big_batches)
        try:
            return trainer.run()
        finally:
            handle.remove()

    end = run_with_memory_limit(
        Trainer(TINY, recipe(epochs=1, batch_size=32), callbacks=[recorder], data=data), 10)
    assert end.reason == "completed"
    assert any("out of memory at batch size 32; continuing at 16" in n for n in recorder.notices)
    assert any("continuing at 8" in n for n in recorder.notices)

    with pytest.raises(TrainingError, match="out of memory even at batch size 8"):
        run_with_memory_limit(Trainer(TINY, recipe(epochs=1, batch_size=32), data=data), 4)


def test_probe_gives_feature_maps_of_the_chosen_layer_at_epoch_end():
    data = tiny_data()
    recorder = Recorder()
    trainer = Trainer(TINY, recipe(epochs=1), callbacks=[recorder], data=data)
    trainer.set_probe("layer2.0.conv1", image_index=4)
    trainer.run()
    probe = recorder.of(EpochEnd)[0].probe
    assert probe.layer == "layer2.0.conv1" and probe.image_index == 4
    assert probe.maps.shape == (12, 5, 5) and probe.maps.dtype == np.float32
    assert probe.image.shape == (1, 10, 10) and probe.label == int(data.test_labels[4])


def test_a_bad_probe_layer_is_a_notice_not_a_failed_run():
    data = tiny_data()
    recorder = Recorder()
    trainer = Trainer(TINY, recipe(epochs=1), callbacks=[recorder], data=data)
    trainer.set_probe("layer9.conv")
    end = trainer.run()
    assert end.reason == "completed" and recorder.of(EpochEnd)[0].probe is None
    assert any("layer9.conv" in notice for notice in recorder.notices)


@pytest.mark.parametrize("schedule", ["constant", "step", "cosine", "onecycle"])
def test_learning_rate_plans_start_peak_and_end_where_they_should(schedule):
    plan = LearningRatePlan(Recipe(epochs=10, lr=1.0, schedule=schedule, step_every=4,
                                   step_gamma=0.5, warmup_epochs=0.0))
    if schedule == "constant":
        assert plan.lr(0) == plan.lr(9.9) == 1.0
    elif schedule == "step":
        assert (plan.lr(3.9), plan.lr(4.0), plan.lr(8.5)) == (1.0, 0.5, 0.25)
    elif schedule == "cosine":
        assert plan.lr(0) == 1.0 and plan.lr(5) == pytest.approx(0.5) and plan.lr(10) < 1e-9
    else:
        assert plan.lr(0) == pytest.approx(1 / 25) and plan.lr(2.5) == pytest.approx(1.0)
        assert plan.lr(10) == pytest.approx(1 / 2500)
    warm = LearningRatePlan(Recipe(epochs=10, lr=1.0, schedule="cosine", warmup_epochs=2))
    assert warm.lr(0) < 0.02 and warm.lr(1) == pytest.approx(0.505) and warm.lr(2) == 1.0


def test_adamw_gradient_clipping_xavier_and_zero_init_train():
    data = tiny_data()
    trainer = Trainer(TINY, recipe(epochs=1, optimizer="adamw", lr=3e-3, grad_clip=1.0,
                                   init="xavier", zero_init_last=True, schedule="step"),
                      data=data)
    end = trainer.run()
    assert end.reason == "completed" and math.isfinite(end.train_loss)
    assert isinstance(trainer.model.layer1[0].bn2.weight, torch.Tensor)


def test_architecture_follows_the_data_channels_and_classes():
    data = tiny_data()
    wrong = TINY.replace(in_channels=3, num_classes=10)
    trainer = Trainer(wrong, recipe(epochs=1), data=data)
    assert trainer.arch.in_channels == 1 and trainer.arch.num_classes == 3
    trainer.run()
    assert trainer.model.fc.out_features == 3


def test_narrow_strided_projection_trains_in_channels_last_without_crashing():
    # oneDNN corrupts the heap in the backward of a strided 1x1 conv with 2-7 input channels
    # in channels_last; the trainer must avoid that layout for such a network.
    narrow = TINY.replace(stem=Stem(kind="single", width=6, kernel=3, stride=1, max_pool=False),
                          stages=(Stage(blocks=("basic",), width=6),
                                  Stage(blocks=("basic",), width=8, stride=2)))
    for seed in range(3):
        end = Trainer(narrow, recipe(epochs=2, seed=seed, channels_last=True),
                      data=tiny_data()).run()
        assert end.reason == "completed"


def test_evaluate_after_the_run_lists_the_most_confidently_wrong_images():
    data = tiny_data()
    trainer = Trainer(TINY, recipe(epochs=1, lr=0.01), data=data)
    trainer.run()
    evaluation = trainer.evaluate()
    wrong = evaluation.wrong_indices
    truth = data.test_labels.numpy()
    assert np.all(truth[wrong] != evaluation.wrong_predicted)
    assert np.all(np.diff(evaluation.wrong_confidence) <= 0)
    assert len(wrong) == 30 - np.trace(evaluation.confusion)


def test_a_failing_torch_compile_falls_back_to_eager_with_a_notice(monkeypatch):
    def broken_compile(model):
        def forward(inputs):
            raise RuntimeError("BackendCompilerFailed: no C++ compiler")
        return forward

    monkeypatch.setattr(torch, "compile", broken_compile)
    recorder = Recorder()
    end = Trainer(TINY, recipe(epochs=1, compile=True), callbacks=[recorder],
                  data=tiny_data()).run()
    assert end.reason == "completed" and end.step == 6
    assert any("torch.compile failed" in notice for notice in recorder.notices)
