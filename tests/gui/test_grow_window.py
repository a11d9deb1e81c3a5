"""Growing the trained network from the Build tab: a block dropped into a stage of the
network that trained offers to keep its weights; kept, the grown network computes the same
function, the next Start continues training it, and the plots mark where it grew."""

from __future__ import annotations

import pytest
import torch
from training_support import (  # noqa: F401 (fixtures)
    no_training_thread_left,
    set_quick_run,
    store,
    tiny_architecture,
    tiny_bundle,
    wait_idle,
)

from resnet_gui.engine.growth import GROWN_KEY
from resnet_gui.engine.model import build_model
from resnet_gui.qt.build.drops import DropTarget, carry_out
from resnet_gui.qt.build.mime import BLOCK, Payload
from resnet_gui.qt.shared.growth import growth_prompt
from resnet_gui.qt.train.panel import TrainingPanel

pytestmark = pytest.mark.timeout(60)
STEPS_PER_EPOCH = 5  # 40 tiny images, batch 8


@pytest.fixture
def main_window(make_window, store):
    bundle = tiny_bundle()
    window = make_window(run_store=store, data_loader=lambda recipe: bundle)
    window.document.reset(tiny_architecture())
    yield window
    window.findChild(TrainingPanel).session.shutdown()


def drop_block(window, stage=0, position=1, kind="basic"):
    """The canvas's drop of a palette block between two blocks of a stage."""
    return carry_out(window.controller, Payload(BLOCK, kind),
                     DropTarget("insert_block", stage=stage, position=position))


def train(qtbot, window, epochs):
    panel = set_quick_run(window, epochs=epochs)
    panel.start_button.click()
    wait_idle(qtbot, panel)
    return panel


def test_keeping_the_weights_grows_the_same_function_and_the_next_run_continues_it(
        qtbot, main_window):
    panel = train(qtbot, main_window, epochs=2)
    session = panel.session
    trained = session.controller.last_model
    asked = []
    main_window.growth_offer.ask = lambda block, kind, source: asked.append(block) or True
    assert drop_block(main_window)
    qtbot.waitUntil(lambda: session.pending_growth is not None, timeout=10_000)
    assert asked == ["layer1.1"]
    growth = session.pending_growth.growth
    assert growth.max_logit_change == 0.0
    assert "max |Δlogit| = 0;" in panel.message
    grown = build_model(growth.arch)
    grown.load_state_dict(growth.payload["model"])
    images = torch.randn(4, 1, 12, 12)
    with torch.no_grad():
        assert torch.equal(grown.eval()(images), trained.cpu().eval()(images))

    starts = []
    session.run_started.connect(starts.append)
    panel = train(qtbot, main_window, epochs=1)
    assert starts and starts[0].start_step == 2 * STEPS_PER_EPOCH, panel.message
    assert starts[0].epochs == 3
    assert panel.plots.growth_marks == [2.0]
    steps_x = panel.plots.live.series["train_loss"].x
    assert steps_x.min() < 2.0 < steps_x.max()  # the curves before and after the growth
    model = session.controller.last_model
    assert len(model.layer1) == 2  # the grown network trained
    saved = torch.load(session.store.checkpoint_path(session.list_runs()[0].run_id),
                       weights_only=False)
    assert [event["block"] for event in saved[GROWN_KEY]] == ["layer1.1"]


def test_choosing_random_weights_starts_the_next_run_afresh(qtbot, main_window):
    panel = train(qtbot, main_window, epochs=1)
    main_window.growth_offer.ask = lambda *args: False
    assert drop_block(main_window)
    qtbot.waitUntil(lambda: "random weights" in panel.message, timeout=10_000)
    assert panel.session.pending_growth is None
    starts = []
    panel.session.run_started.connect(starts.append)
    panel = train(qtbot, main_window, epochs=1)
    assert starts[0].start_step == 0 and panel.plots.growth_marks == []


def test_no_question_before_a_run_and_a_plain_block_cannot_keep_the_weights(qtbot,
                                                                           main_window):
    asked = []
    main_window.growth_offer.ask = lambda *args: asked.append(args) or True
    assert drop_block(main_window)
    qtbot.wait(50)
    assert asked == []  # nothing trained yet: nothing to keep
    main_window.controller.undo()
    panel = train(qtbot, main_window, epochs=1)
    assert drop_block(main_window, kind="plain")
    qtbot.waitUntil(lambda: "cannot be kept" in panel.message, timeout=10_000)
    assert asked == [] and panel.session.pending_growth is None


def test_the_prompt_offers_both_choices(qtbot):
    box = growth_prompt(None, "layer2.1", "basic", "checkpoint.pt")
    qtbot.addWidget(box)
    labels = [button.text() for button in box.buttons()]
    assert "Keep the trained weights" in labels and "Start from random weights" in labels
