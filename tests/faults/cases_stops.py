"""Fault cases of class 2: every polite way a process is ended saves the run; and kill -9 at
random moments, resumed until done, ends with the weights of the uninterrupted run.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

from tests.faults.harness import (
    SIGNALS,
    Outcome,
    Workspace,
    cli,
    finish,
    leftovers,
    load_state,
    log_problems,
    read_log,
    same_weights,
    send_after_steps,
    start,
    wait_for,
)


# -- 2. every polite way a process is ended saves the run -------------------------------------


def signal_mid_run(ws: Workspace, name: str, steps: int, resume: bool = False) -> Outcome:
    """SIGINT, SIGTERM or SIGHUP after ``steps`` logged steps: the checkpoint saved at that
    step, an end record, exit 128+N; and (``resume``) the run continues from there."""
    signum = SIGNALS[name]
    outcome = Outcome(f"{name} after {steps} logged steps")
    folder = ws.scratch(f"signal-{name}-{steps}")
    checkpoint, log = folder / "run.pt", folder / "run.jsonl"
    process = start(ws.train("--checkpoint", checkpoint, "--log", log, epochs=60))
    sent = send_after_steps(process, log, steps, signum)
    code, err = finish(process)
    outcome.expect(sent, "the run ended before the signal was sent")
    outcome.process(code, err, 128 + signum)
    records, _ = read_log(log)
    end = records[-1] if records else {}
    outcome.expect(end.get("event") == "end" and end.get("reason") == "stopped",
                   f"the log does not end with a stop: {end}", lost=True)
    state = load_state(checkpoint)
    outcome.expect(state is not None and state["step"] == end.get("step"),
                   "the checkpoint does not hold the stopped step", lost=True)
    outcome.expect(not log_problems(log), f"log: {log_problems(log)}", lost=True)
    outcome.expect(not leftovers(folder), f"left over: {leftovers(folder)}")
    if resume and state is not None:
        more = cli(ws.resume(checkpoint, "--log", log, "--max-steps", state["step"] + 3))
        outcome.process(more.returncode, more.stderr, 0)
        outcome.expect(not log_problems(log), f"log after resume: {log_problems(log)}", lost=True)
    return outcome


def two_signals(ws: Workspace, first: str, second: str, steps: int, gap: float) -> Outcome:
    """A second signal ``gap`` seconds after the first, while the stop is being saved: it
    aborts, but corrupts nothing and leaves no temporary file."""
    outcome = Outcome(f"{first} then {second} {gap * 1000:.0f} ms later")
    folder = ws.scratch(f"two-{first}-{second}")
    checkpoint, log = folder / "run.pt", folder / "run.jsonl"
    process = start(ws.train("--checkpoint", checkpoint, "--log", log, epochs=60))
    send_after_steps(process, log, steps, SIGNALS[first])
    if gap:
        time.sleep(gap)
    if process.poll() is None:
        process.send_signal(SIGNALS[second])
    code, err = finish(process)
    outcome.process(code, err, None)
    outcome.expect(code in (128 + SIGNALS[first], 128 + SIGNALS[second]),
                   f"exit code {code}", lost=code == 0)
    saved = [path for path in (checkpoint, folder / "run.prev.pt") if path.exists()]
    outcome.expect(all(load_state(path) is not None for path in saved),
                   "a checkpoint is damaged", lost=True)
    outcome.expect(not log_problems(log), f"log: {log_problems(log)}", lost=True)
    outcome.expect(not leftovers(folder), f"left over: {leftovers(folder)}")
    return outcome


def signal_while_loading(ws: Workspace, name: str, delay: float) -> Outcome:
    """A signal before training starts (imports, data loading): nothing to save, so the
    process ends at once, without a traceback or a file left behind."""
    signum = SIGNALS[name]
    outcome = Outcome(f"{name} {delay:.1f} s after start")
    folder = ws.scratch(f"early-{name}")
    process = start(ws.train("--checkpoint", folder / "run.pt", "--log", folder / "run.jsonl"))
    time.sleep(delay)
    process.send_signal(signum)
    code, err = finish(process)
    outcome.process(code, err, None)
    outcome.expect(code in (128 + signum, -signum, 0), f"exit code {code}")
    outcome.expect(not leftovers(folder), f"left over: {leftovers(folder)}")
    if (folder / "run.pt").exists():
        outcome.expect(load_state(folder / "run.pt") is not None, "damaged checkpoint", lost=True)
    return outcome


# -- kill -9: resume equals uninterrupted ----------------------------------------------------

KILL_EPOCHS = 5


def reference_files(ws: Workspace) -> tuple[Path, Path]:
    """The checkpoint and log of the uninterrupted, completed run (made once)."""
    folder = ws.root / "reference"
    checkpoint, log = folder / "run.pt", folder / "run.jsonl"
    if not checkpoint.exists():
        folder.mkdir(exist_ok=True)
        done = cli(ws.train("--checkpoint", checkpoint, "--log", log, epochs=KILL_EPOCHS))
        if done.returncode != 0:
            raise RuntimeError(f"the reference run failed: {done.stderr[-500:]}")
    return checkpoint, log


def reference_run(ws: Workspace) -> dict:
    """The state the kill -9 trials must end up equal to."""
    return load_state(reference_files(ws)[0])


def kill9_trial(ws: Workspace, reference: dict, seed: int, kills: int = 3,
                window: float = 2.5) -> Outcome:
    """Start the run, ``kill -9`` it up to ``kills`` times at random moments after it began
    logging (anywhere within ``window`` seconds), resume each time (or start again when no
    checkpoint was saved yet), and compare the end with the uninterrupted ``reference``."""
    rng = random.Random(seed)
    outcome = Outcome(f"kill -9 trial {seed}")
    folder = ws.scratch(f"kill9-{seed}")
    checkpoint, log = folder / "run.pt", folder / "run.jsonl"
    killed = 0
    while True:
        args = (ws.resume(checkpoint, "--log", log) if checkpoint.exists()
                else ws.train("--checkpoint", checkpoint, "--log", log, epochs=KILL_EPOCHS))
        process = start(args)
        if killed < kills:
            started = log.stat().st_mtime if log.exists() else None
            began = (lambda: process.poll() is not None or (
                log.exists() and log.stat().st_mtime != started and log.stat().st_size > 0))
            wait_for(began, timeout=180)
            time.sleep(rng.uniform(0, window))
            if process.poll() is None:
                process.kill()
                process.wait()
                killed += 1
                continue
        code, err = finish(process)
        break
    outcome.name += f" ({killed} kills)"
    outcome.kills = killed
    outcome.process(code, err, 0)
    final = load_state(checkpoint)
    outcome.expect(final is not None and same_weights(final, reference),
                   "the resumed run's weights differ from the uninterrupted run's", lost=True)
    outcome.expect(final is not None and final["step"] == reference["step"],
                   "the resumed run ended at another step", lost=True)
    problems = log_problems(log)
    outcome.expect(not problems, f"log: {problems}", lost=True)
    records, _ = read_log(log)
    epochs = sorted(r["epoch"] for r in records if r.get("event") == "epoch")
    outcome.expect(epochs == list(range(KILL_EPOCHS)),
                   f"epoch records {epochs}, expected each of 0..{KILL_EPOCHS - 1} once",
                   lost=True)
    outcome.expect(not leftovers(folder), f"left over: {leftovers(folder)}")
    return outcome
