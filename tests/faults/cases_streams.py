"""Fault cases of class 3 (output that goes away ends nothing silently) and class 4 (one run
per file)."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import subprocess
from pathlib import Path

from tests.faults.harness import (
    Outcome,
    Workspace,
    cli,
    finish,
    leftovers,
    load_state,
    log_problems,
    read_log,
    start,
    wait_for,
)

# -- 3. output that goes away ------------------------------------------------------------------


def closed_stderr(ws: Workspace, lines: int) -> Outcome:
    """Standard error closed after ``lines`` lines (``... 2>&1 >/dev/null | head -N``):
    progress is lost, training and saving go on to the end."""
    outcome = Outcome(f"stderr closed after {lines} lines")
    folder = ws.scratch(f"stderr-{lines}")
    checkpoint, log = folder / "run.pt", folder / "run.jsonl"
    process = start(ws.train("--checkpoint", checkpoint, "--log", log, epochs=3))
    for _ in range(lines):
        process.stderr.readline()
    process.stderr.close()
    code = process.wait(timeout=300)
    outcome.expect(code == 0, f"exit code {code}, expected 0 (training should go on)",
                   lost=code != 0)
    records, _ = read_log(log)
    outcome.expect(bool(records) and records[-1].get("reason") == "completed",
                   "the run did not complete", lost=True)
    state = load_state(checkpoint)
    outcome.expect(state is not None and state["epoch"] == 3, "the final checkpoint is missing",
                   lost=True)
    outcome.expect(not leftovers(folder), f"left over: {leftovers(folder)}")
    return outcome


def full_stderr(ws: Workspace) -> Outcome:
    """Standard error on a full disk (``2>/dev/full``), progress bar on: the run goes on."""
    outcome = Outcome("stderr on a full disk")
    folder = ws.scratch("stderr-full")
    checkpoint, log = folder / "run.pt", folder / "run.jsonl"
    args = [a for a in ws.train("--checkpoint", checkpoint, "--log", log, epochs=2)
            if a != "--no-progress"]
    with open("/dev/full", "w") as full:
        done = cli(args, stderr=full)
    outcome.expect(done.returncode == 0, f"exit code {done.returncode}", lost=True)
    records, _ = read_log(log)
    outcome.expect(bool(records) and records[-1].get("reason") == "completed",
                   "the run did not complete", lost=True)
    outcome.expect(load_state(checkpoint) is not None, "no checkpoint", lost=True)
    return outcome


def _file_size_limit(limit: int):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def _padding_record(size: int) -> bytes:
    """A log record of about ``size`` bytes without a step (kept whatever the resume)."""
    return (json.dumps({"event": "error", "message": "padding " + "x" * size}) + "\n").encode()


def log_size_limit(ws: Workspace, room: int) -> Outcome:
    """``ulimit -f`` reached by the log with ``room`` bytes to spare: the run stops with its
    checkpoint kept, one sentence, exit 1, and the log holds only whole records."""
    outcome = Outcome(f"log reaches the file-size limit ({room} bytes of room)")
    folder = ws.scratch(f"log-limit-{room}")
    checkpoint, log = ws.copy_saved(folder)
    with open(log, "ab") as handle:  # the checkpoint (36 kB) fits under the limit; the log not
        handle.write(_padding_record(120_000))
    limit = log.stat().st_size + room
    done = cli(ws.resume(checkpoint, "--log", log), preexec_fn=_file_size_limit(limit))
    outcome.process(done.returncode, done.stderr, 1, "file-size limit")
    outcome.expect("resumes it" in done.stderr, "the message does not say the checkpoint resumes")
    outcome.expect(log.stat().st_size <= limit, "the log grew past the limit")
    outcome.expect(not log_problems(log), f"log: {log_problems(log)}", lost=True)
    state = load_state(checkpoint)
    outcome.expect(state is not None and state["step"] >= 5, "the checkpoint was lost", lost=True)
    outcome.expect(not leftovers(folder), f"left over: {leftovers(folder)}")
    return outcome


def checkpoint_size_limit(ws: Workspace, limit: int) -> Outcome:
    """``ulimit -f`` below the checkpoint's size: the save fails in one sentence, exit 1, the
    previous checkpoint intact and no temporary file left."""
    outcome = Outcome(f"checkpoint over the file-size limit ({limit} bytes)")
    folder = ws.scratch(f"ckpt-limit-{limit}")
    checkpoint, _ = ws.copy_saved(folder)
    saved = checkpoint.read_bytes()
    done = cli(ws.resume(checkpoint), preexec_fn=_file_size_limit(limit))
    outcome.process(done.returncode, done.stderr, 1, "could not save the checkpoint")
    outcome.expect(checkpoint.read_bytes() == saved, "the previous checkpoint changed", lost=True)
    outcome.expect(not leftovers(folder), f"left over: {leftovers(folder)}")
    return outcome


@contextlib.contextmanager
def small_disk(folder: Path, size: str):
    """A tmpfs of ``size`` mounted on ``folder``; raises OSError where mounting is not
    permitted."""
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        raise OSError(f"cannot mount a tmpfs: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def full_disk(ws: Workspace, free: int) -> Outcome:
    """A disk that fills up mid-run (a tmpfs with ``free`` bytes left): one sentence, exit 1,
    the last checkpoint loadable, the log whole."""
    outcome = Outcome(f"disk with {free // 1000} kB free fills up")
    with small_disk(ws.root / f"disk-{free}", "1m") as disk:
        filler = disk / "filler"
        with open(filler, "wb") as handle:
            handle.write(bytes(os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize - free))
        checkpoint, log = disk / "run.pt", disk / "run.jsonl"
        done = cli(ws.train("--checkpoint", checkpoint, "--log", log, epochs=200))
        outcome.process(done.returncode, done.stderr, 1, "the disk is full")
        if checkpoint.exists():
            outcome.expect(load_state(checkpoint) is not None, "the checkpoint is damaged",
                           lost=True)
        outcome.expect(not log_problems(log), f"log: {log_problems(log)}", lost=True)
        outcome.expect(not leftovers(disk), f"left over: {leftovers(disk)}")
    return outcome


STDOUT_COMMANDS = {
    "presets": ["presets"],
    "summary": ["summary", "resnet20"],
    "summary --json": ["summary", "resnet20", "--json"],
    "export json": ["export", "resnet20", "--format", "json", "--out", "-"],
    "export py": ["export", "resnet20", "--format", "py", "--out", "-"],
}


def stdout_gone(ws: Workspace, command: str, how: str) -> Outcome:
    """Standard output full (/dev/full), closed (>&-) or whose reader left: one sentence and
    exit 1, never a traceback or exit 0."""
    outcome = Outcome(f"{command} with standard output {how}")
    args = STDOUT_COMMANDS[command]
    expected = {"full": "the disk is full", "closed": "standard output is closed",
                "reader gone": "standard output was closed"}[how]
    if how == "full":
        with open("/dev/full", "w") as full:
            done = cli(args, stdout=full)
        code, err = done.returncode, done.stderr
    elif how == "closed":
        done = cli(args, stdout=subprocess.DEVNULL, preexec_fn=lambda: os.close(1))
        code, err = done.returncode, done.stderr
    else:
        process = start(args, stdout=subprocess.PIPE)
        process.stdout.close()  # before the command writes anything
        code, err = finish(process)
    outcome.process(code, err, 1, expected)
    return outcome


def log_reader_gone(ws: Workspace) -> Outcome:
    """``--log -`` into a pipe whose reader left: the run stops with its checkpoint saved and
    says so, exit 1."""
    outcome = Outcome("--log - with the reader gone")
    folder = ws.scratch("log-stdout")
    checkpoint = folder / "run.pt"
    process = start(ws.train("--checkpoint", checkpoint, "--log", "-", epochs=30),
                    stdout=subprocess.PIPE)
    process.stdout.close()
    code, err = finish(process)
    outcome.process(code, err, 1, "its reader closed the pipe")
    outcome.expect(load_state(checkpoint) is not None, "no checkpoint was kept", lost=True)
    outcome.expect(not leftovers(folder), f"left over: {leftovers(folder)}")
    return outcome


# -- 4. one run per file -----------------------------------------------------------------------


def two_runs(ws: Workspace, shared: str) -> Outcome:
    """A second run writing the checkpoint or log of a live one is refused, naming the first's
    pid; the first run goes on, and its files hold its own run only."""
    outcome = Outcome(f"two runs sharing the {shared}")
    folder = ws.scratch(f"two-runs-{shared}")
    checkpoint, log = folder / "a.pt", folder / "a.jsonl"
    first = start(ws.train("--checkpoint", checkpoint, "--log", log, epochs=60))
    wait_for(lambda: first.poll() is not None or bool(read_log(log)[0]))
    if shared == "checkpoint via a link":
        (folder / "link.pt").symlink_to(checkpoint)
    second_checkpoint = {"checkpoint": checkpoint, "log": folder / "b.pt",
                         "checkpoint via a link": folder / "link.pt"}[shared]
    second_log = log if shared == "log" else folder / "b.jsonl"
    second = cli(ws.train("--checkpoint", second_checkpoint, "--log", second_log, "--lr", 0.2,
                          "--max-steps", 3))
    outcome.process(second.returncode, second.stderr, 1,
                    f"is in use by another resnet-gui run (pid {first.pid})")
    first.send_signal(signal.SIGINT)
    code, err = finish(first)
    outcome.process(code, err, 130)
    state = load_state(checkpoint)
    outcome.expect(state is not None and state["recipe"]["lr"] != 0.2,
                   "the first run's checkpoint holds the second run", lost=True)
    outcome.expect(not (folder / "b.pt").exists() and not (folder / "b.jsonl").exists(),
                   "the refused run wrote files")
    outcome.expect(not log_problems(log), f"log: {log_problems(log)}", lost=True)
    outcome.expect(not leftovers(folder), f"left over: {leftovers(folder)}")
    return outcome
