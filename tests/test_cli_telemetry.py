"""`resnet-gui train --telemetry-every N`: one log record per sample, a whole history after
resume, and a clear error for a bad interval."""

from __future__ import annotations

import math

from resnet_gui.cli import main
from resnet_gui.engine.checkpoint import load_checkpoint
from resnet_gui.engine.telemetry import DEFAULT_EVERY, METRICS, TelemetryHistory
from tests.test_cli_train import data_dir, read_log, run_cli  # noqa: F401 (a fixture)


def test_the_log_has_one_telemetry_record_per_n_steps_across_a_resume(tmp_path, data_dir):
    log, checkpoint = tmp_path / "run.jsonl", tmp_path / "run.pt"
    common = ["--data-dir", data_dir, "--checkpoint", checkpoint, "--no-progress", "--log",
              log, "--telemetry-every", "4", "--batch-size", "32", "--limit-test", "20"]
    first = run_cli("train", "resnet20", "--epochs", "2", "--max-steps", "9", "--seed", "5",
                    *common)
    assert first.returncode == 0, first.stderr
    resumed = run_cli("train", "--resume", checkpoint, *common)
    assert resumed.returncode == 0, resumed.stderr
    records = read_log(log)
    samples = [r for r in records if r["event"] == "telemetry"]
    assert records[-1]["step"] == 14
    assert [r["step"] for r in samples] == [0, 4, 8, 12]  # steps 0..13, one per 4
    names = [f"layer{s}.{b}" for s in (1, 2, 3) for b in (0, 1, 2)]
    for record in samples:
        assert set(record) == {"event", "step", "epoch_progress", "blocks"}
        assert [block["name"] for block in record["blocks"]] == names
        for block in record["blocks"]:
            assert set(block) == {"name", *METRICS}
            assert all(isinstance(block[m], float) and math.isfinite(block[m])
                       for m in METRICS)
    assert samples[0]["epoch_progress"] == 0.0
    assert samples[-1]["epoch_progress"] == 1 + (12 - 7) * 32 / 200
    # The checkpoint of the resumed run holds the whole run's history.
    history = TelemetryHistory.from_checkpoint(load_checkpoint(checkpoint)["telemetry"], 14)
    assert history.steps == [0, 4, 8, 12]
    assert history.metric("cosine")[:, 0].tolist() == [
        samples[i]["blocks"][0]["cosine"] for i in range(4)]


def test_the_help_names_the_default_interval(capsys):
    try:
        main(["train", "--help"])
    except SystemExit:
        pass
    help_text = " ".join(capsys.readouterr().out.split())
    assert f"every N steps; 0: off (default {DEFAULT_EVERY})" in help_text


def test_a_negative_interval_is_one_line(tmp_path, capsys, data_dir):
    assert main(["train", "resnet20", "--data-dir", str(data_dir),
                 "--telemetry-every", "-2"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [("resnet-gui: error: --telemetry-every must be 0 (no telemetry) or a "
                    "number of steps, got -2")]
