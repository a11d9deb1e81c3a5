"""The degradation experiment on tiny generated data: both twins train with one recipe, the
curves and progress arrive, and Stop ends it early with what was measured."""

from __future__ import annotations

import json
import threading

import pytest

from resnet_gui.arch.lab import LAB_RECIPE, check_depths
from resnet_gui.arch.presets import build_preset
from resnet_gui.engine.model import build_model
from resnet_gui.engine.events import EpochEnd, StepEnd, TrainStart
from resnet_gui.engine.lab.degradation import DegradationResult, DegradationRun, run_degradation
from resnet_gui.errors import UserError
from tests.engine.test_data import write_fashion_mnist

TINY = LAB_RECIPE.replace(epochs=2, batch_size=16, limit_train=None, limit_test=None,
                          device="cpu", precision="fp32")


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from resnet_gui.engine.data import load_data

    root = tmp_path_factory.mktemp("data")
    write_fashion_mnist(root / "FashionMNIST" / "raw", train=48, test=20)
    return load_data(TINY.replace(data_dir=str(root)))


def test_both_twins_train_with_one_recipe_and_report_their_curves(data):
    reports = []
    result = run_degradation(data, depths=[20], recipe=TINY, progress=reports.append)
    assert [(run.kind, run.network) for run in result.runs] == [("resnet", "resnet20"),
                                                                ("plain", "plain20")]
    for run in result.runs:
        assert run.reason == "completed" and run.epochs == [1, 2]
        assert len(run.train_error) == len(run.test_error) == 2
        assert run.step[-1] == 6 and 0 <= run.final_train_error <= 1  # 48 images, batch 16
        assert run.final_train_error == pytest.approx(run.train_error[-1])
        assert run.cpu_seconds > 0 and run.seconds > 0
    # Zero-padding shortcuts have no parameters: the twins are the same size.
    model = build_model(build_preset("resnet20", in_channels=1, num_classes=10))
    assert result.runs[0].parameters == result.runs[1].parameters == sum(
        p.numel() for p in model.parameters())
    done = [r.done for r in reports]
    assert done == sorted(done) and done[-1] == reports[-1].total == 12
    assert {type(r.event) for r in reports} >= {TrainStart, StepEnd, EpochEnd}
    assert {r.run for r in reports} == {"resnet20", "plain20"}
    loaded = json.loads(result.to_json())
    assert loaded["recipe"]["epochs"] == 2 and loaded["reference_test_error"]["20"] == 8.75
    assert set(loaded["runs"][0]) >= {"depth", "kind", "parameters", "final_train_error",
                                      "final_test_error", "train_error", "test_error",
                                      "step_train_error"}


def test_stop_ends_the_current_run_and_starts_no_other(data):
    stop = threading.Event()

    def progress(report):
        if isinstance(report.event, StepEnd):
            stop.set()

    result = run_degradation(data, depths=[20, 32], recipe=TINY, progress=progress, stop=stop)
    assert result.stopped and len(result.runs) == 1
    assert result.runs[0].reason == "stopped"


def test_findings_compare_the_shallowest_and_the_deepest():
    def run(kind, depth, error):
        return DegradationRun(depth, kind, f"{kind}{depth}", 1, error, error)

    result = DegradationResult(
        depths=[20, 56], dataset="d", num_train=1, num_test=1, recipe={}, reference_test_error={},
        runs=[run("resnet", 20, 0.10), run("resnet", 56, 0.08), run("plain", 20, 0.12),
              run("plain", 56, 0.20)])
    assert result.findings() == [
        "plain-56 trains worse than plain-20: training error 20.00 % vs 12.00 %",
        "ResNet-56 trains at least as well as ResNet-20: training error 8.00 % vs 10.00 %"]


@pytest.mark.parametrize("depths, message", [
    ([], "at least one depth"), ([21], "unknown depth 21"), ([18], "unknown depth 18"),
    ([20, 20], "given twice"),
])
def test_bad_depths_are_one_sentence(depths, message):
    with pytest.raises(UserError, match=message):
        check_depths(depths)


def test_with_a_run_store_each_twin_is_recorded_like_any_training_run(data, tmp_path):
    from resnet_gui.engine.runs import RunStore

    store = RunStore(tmp_path / "runs")
    result = run_degradation(data, depths=[20], recipe=TINY.replace(epochs=1), store=store)
    runs = {summary.name: summary for summary in store.list()}
    assert sorted(runs) == ["plain20", "resnet20"]
    for run in result.runs:
        stored = runs[run.network]
        assert stored.checkpoint == run.checkpoint == str(store.checkpoint_path(stored.run_id))
        assert stored.epochs_done == 1 and stored.status in ("completed", "did_not_learn")
        assert len(store.load(stored.run_id).log.epochs["epoch"]) == 1  # curves kept too
