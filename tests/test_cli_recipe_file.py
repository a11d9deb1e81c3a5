"""``train --recipe FILE.json``: a run's whole recipe as a file (the window passes its settings
this way to the processes it starts), and the log read back into the trainer's events."""

from __future__ import annotations

import json

import pytest

from resnet_gui.arch.recipe import RECIPE_PRESETS, Recipe
from resnet_gui.cli import main
from resnet_gui.commands.jsonlog import event_of
from resnet_gui.engine.events import BlockStats, EpochEnd, StepEnd, TelemetryEvent, TrainEnd, \
    TrainStart
from tests.engine.test_data import write_fashion_mnist

# --threads 1 in this process: the fixture puts torch's setting back afterwards.
pytestmark = pytest.mark.usefixtures("one_thread")




def test_a_recipe_file_sets_every_field_and_options_still_override(tmp_path, capsys):
    write_fashion_mnist(tmp_path / "data" / "FashionMNIST" / "raw", train=40, test=20)
    recipe = Recipe(epochs=3, batch_size=10, lr=0.02, schedule="step", step_every=1,
                    step_gamma=0.5, precise_bn=False, limit_test=10, seed=4, device="cpu",
                    precision="fp32", data_dir=str(tmp_path / "data"))
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps(recipe.to_dict()))
    log = tmp_path / "run.jsonl"
    assert main(["train", "resnet20", "--recipe", str(path), "--epochs", "2", "--resize", "28",
                 "--log", str(log), "--no-progress", "--threads", "1"]) == 0
    records = [json.loads(line) for line in log.read_text().splitlines()]
    planned = records[0]["recipe"]
    assert (planned["epochs"], planned["batch_size"], planned["lr"]) == (2, 10, 0.02)
    assert (planned["step_every"], planned["step_gamma"], planned["precise_bn"]) == (1, 0.5,
                                                                                     False)
    assert records[-1]["reason"] == "completed" and records[-1]["step"] == 8

    events = [event_of(record) for record in records]
    assert isinstance(events[0], TrainStart) and events[0].total_steps == 8
    assert events[0].class_names == tuple(records[0]["class_names"])
    assert {type(event) for event in events} == {TrainStart, StepEnd, TelemetryEvent, EpochEnd,
                                                 TrainEnd}
    telemetry = next(event for event in events if isinstance(event, TelemetryEvent))
    assert isinstance(telemetry.blocks[0], BlockStats)
    epochs = [event for event in events if isinstance(event, EpochEnd)]
    assert [event.test_accuracy for event in epochs] == [r["test_acc"] for r in records
                                                         if r["event"] == "epoch"]


@pytest.mark.parametrize("content, expected", [
    ("{not json", "is not valid JSON; give a recipe JSON file"),
    ("[1, 2]", "holds no recipe object"),
    ('{"epochs": -3}', "epochs"),
])
def test_a_bad_recipe_file_is_one_sentence(tmp_path, capsys, content, expected):
    path = tmp_path / "recipe.json"
    path.write_text(content)
    assert main(["train", "resnet20", "--recipe", str(path), "--no-progress"]) != 0
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("resnet-gui: error: ") and expected in error[0]
    assert "Traceback" not in error[0]


def test_a_missing_recipe_file_or_unknown_name_is_one_sentence(tmp_path, capsys):
    assert main(["train", "resnet20", "--recipe", str(tmp_path / "gone.json")]) != 0
    assert "does not exist; give the path of a recipe JSON file" in capsys.readouterr().err
    assert main(["train", "resnet20", "--recipe", "fastest"]) != 0
    error = capsys.readouterr().err
    assert "unknown recipe 'fastest'" in error and all(name in error for name in RECIPE_PRESETS)


def test_a_short_end_record_reads_back_with_nan_for_what_it_lacks():
    end = event_of({"event": "end", "reason": "aborted", "epoch": 1, "step": 3,
                    "message": "aborted"})
    assert isinstance(end, TrainEnd) and end.reason == "aborted" and end.train_loss != \
        end.train_loss
    assert event_of({"event": "error", "message": "disk full"}) == "disk full"
    assert event_of({"event": "something else"}) is None
