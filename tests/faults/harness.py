"""The fault campaign's machinery, shared by tests/faults/ (a few cases of each class) and
benchmarks/bench_faults.py (many): a tiny workspace, the command line in a subprocess, and
an :class:`Outcome` per case saying whether every promise held.

A case is *clean* when the process printed no traceback, lost or corrupted no file, and kept
every other promise of the case (exit code, one-sentence message, no leftovers).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # the benchmark runs this outside pytest
    sys.path.insert(0, str(REPO))

from tests.engine.test_data import write_fashion_mnist, write_idx  # noqa: E402, F401

# A network of a few thousand weights: a step takes about a millisecond, a checkpoint 36 kB.
TINY_ARCHITECTURE = {
    "schema": "resnet-gui/architecture", "version": 1, "name": "tiny", "in_channels": 1,
    "input_size": [28, 28], "num_classes": 10,
    "stem": {"kind": "single", "width": 4, "kernel": 3, "stride": 2, "padding": 1,
             "bias": False, "batch_norm": True, "max_pool": False},
    "stages": [{"block": "basic", "num_blocks": 1, "width": 4, "stride": 1},
               {"block": "basic", "num_blocks": 1, "width": 8, "stride": 2}],
    "head": {"pool": "avg", "dropout": 0.0},
}
TRAIN_IMAGES, TEST_IMAGES = 256, 64
ERROR_PREFIX = "resnet-gui: error: "


@dataclass(frozen=True)
class Workspace:
    """A folder with the tiny architecture and a tiny Fashion-MNIST in IDX files."""

    root: Path

    @property
    def arch(self) -> Path:
        return self.root / "tiny.json"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def idx_folder(self) -> Path:
        return self.data / "FashionMNIST" / "raw"

    def train(self, *extra: Any, epochs: int = 3, batch: int = 16) -> list[str]:
        """``resnet-gui train`` of the tiny network, repeatable (one thread, a seed)."""
        return ["train", str(self.arch), "--data-dir", str(self.data), "--epochs", str(epochs),
                "--batch-size", str(batch), "--threads", "1", "--seed", "1", "--no-progress",
                "--limit-test", "32", *map(str, extra)]

    def resume(self, checkpoint: Path, *extra: Any) -> list[str]:
        return ["train", "--resume", str(checkpoint), "--data-dir", str(self.data),
                "--threads", "1", "--no-progress", *map(str, extra)]

    def scratch(self, name: str) -> Path:
        """A new empty folder for one case's files (``name`` and a number)."""
        number = 1
        while True:
            folder = self.root / f"{name}-{number}"
            try:
                folder.mkdir(parents=True)
                return folder
            except FileExistsError:
                number += 1


    def saved_run(self) -> tuple[Path, Path]:
        """The checkpoint and log of a run stopped by --max-steps 5 in its first epoch (of
        3), made once and shared: cases copy them with :meth:`copy_saved`."""
        checkpoint, log = self.root / "saved" / "run.pt", self.root / "saved" / "run.jsonl"
        if not checkpoint.exists():
            checkpoint.parent.mkdir(exist_ok=True)
            done = cli(self.train("--checkpoint", checkpoint, "--log", log, "--max-steps", 5))
            if done.returncode != 0:
                raise RuntimeError(f"the shared run failed: {done.stderr[-500:]}")
        return checkpoint, log

    def copy_saved(self, folder: Path) -> tuple[Path, Path]:
        """A copy of :meth:`saved_run`'s checkpoint and log in ``folder``."""
        checkpoint, log = (folder / "run.pt", folder / "run.jsonl")
        for source, copy in zip(self.saved_run(), (checkpoint, log)):
            shutil.copyfile(source, copy)
        return checkpoint, log


def make_workspace(root: Path) -> Workspace:
    root.mkdir(parents=True, exist_ok=True)
    workspace = Workspace(root)
    workspace.arch.write_text(json.dumps(TINY_ARCHITECTURE))
    write_fashion_mnist(workspace.idx_folder, train=TRAIN_IMAGES, test=TEST_IMAGES)
    return workspace


_SHARED: dict[str, Workspace] = {}


def shared_workspace(tmp_path_factory) -> Workspace:
    """One workspace for every fault test of a pytest session (its shared runs made once)."""
    if "workspace" not in _SHARED:
        _SHARED["workspace"] = make_workspace(tmp_path_factory.mktemp("faults"))
    return _SHARED["workspace"]


# -- the command line in a subprocess ---------------------------------------------------------


def cli_env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "RESNET_GUI_DATA": "",
            "PYTHONPATH": str(REPO), "QT_QPA_PLATFORM": "offscreen"}


def command(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "resnet_gui", *map(str, args)]


def cli(args: list[str], timeout: float = 300, env_extra: dict[str, str] | None = None,
        **popen: Any) -> subprocess.CompletedProcess:
    """Run ``resnet-gui ARGS`` to the end; stdout and stderr captured as text unless given."""
    popen.setdefault("stdout", subprocess.PIPE)
    popen.setdefault("stderr", subprocess.PIPE)
    return subprocess.run(command(args), cwd=popen.pop("cwd", REPO),
                          env={**cli_env(), **(env_extra or {})}, text=True, timeout=timeout,
                          **popen)


def start(args: list[str], **popen: Any) -> subprocess.Popen:
    popen.setdefault("stdout", subprocess.DEVNULL)
    popen.setdefault("stderr", subprocess.PIPE)
    return subprocess.Popen(command(args), cwd=popen.pop("cwd", REPO), env=cli_env(),
                            text=True, **popen)


def finish(process: subprocess.Popen, timeout: float = 300) -> tuple[int, str]:
    """Wait for ``process``: its exit code and stderr (killed if it overruns)."""
    try:
        _, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate()
        return -9, (err or "") + "\n[the harness killed it: timeout]"
    return process.returncode, err or ""


def wait_for(predicate, timeout: float = 180, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


# -- what a case checks ---------------------------------------------------------------------


@dataclass
class Outcome:
    """One case: the promises that failed, and whether any was a traceback or lost data."""

    name: str
    failures: list[str] = field(default_factory=list)
    traceback: bool = False
    data_lost: bool = False
    kills: int = 0  # kill -9 trials: how many times the run was killed

    @property
    def clean(self) -> bool:
        return not self.failures and not self.traceback and not self.data_lost

    def expect(self, ok: bool, what: str, lost: bool = False) -> bool:
        """Record ``what`` as broken unless ``ok``; ``lost``: the break lost or corrupted
        data (or claimed success after a failure)."""
        if not ok:
            self.failures.append(what)
            self.data_lost = self.data_lost or lost
        return ok

    def process(self, code: int, stderr: str, exit_code: int | None,
                sentence: str | None = None) -> None:
        """No traceback, the expected exit code, and (``sentence``) one error line holding it."""
        if "Traceback" in stderr or "Exception ignored" in stderr:
            self.traceback = True
            self.failures.append("traceback: " + stderr.strip().splitlines()[-1][:200])
        if exit_code is not None:
            self.expect(code == exit_code, f"exit code {code}, expected {exit_code}",
                        lost=code == 0)
        if sentence is not None:
            errors = [line for line in stderr.splitlines() if line.startswith(ERROR_PREFIX)]
            self.expect(len(errors) == 1 and sentence in errors[0],
                        f"expected one error line with {sentence!r}, got {errors or stderr[-300:]!r}")

    def report(self) -> str:
        return f"{self.name}: " + "; ".join(self.failures)


# -- files after a case ----------------------------------------------------------------------

_LEFTOVER = re.compile(r"^\..*\.(tmp|lock)$")


def leftovers(folder: Path) -> list[str]:
    """Temporary and lock files of ours left in ``folder``."""
    return sorted(name for name in os.listdir(folder) if _LEFTOVER.match(name))


def read_log(path: Path) -> tuple[list[dict], bool]:
    """The records of a log, and whether every line is a whole JSON record."""
    if not path.exists():
        return [], True
    records, whole = [], True
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        whole = False
    for line in data.splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            whole = False
    return records, whole


def log_problems(path: Path) -> list[str]:
    """What is wrong with a log: torn lines, a step logged twice, steps going backwards."""
    records, whole = read_log(path)
    problems = [] if whole else ["a torn or foreign line"]
    steps = [r["step"] for r in records if r.get("event") == "step"]
    if len(steps) != len(set(steps)):
        problems.append("a step logged twice")
    if steps != sorted(steps):
        problems.append("steps out of order")
    epochs = [r["epoch"] for r in records if r.get("event") == "epoch"]
    if len(epochs) != len(set(epochs)):
        problems.append("an epoch logged twice")
    return problems


def load_state(path: Path) -> dict | None:
    """The checkpoint at ``path`` as resnet-gui loads it (checksum checked); None if it is
    not loadable."""
    from resnet_gui.engine.checkpoint import load_checkpoint
    from resnet_gui.errors import UserError

    try:
        return load_checkpoint(path)
    except UserError:
        return None


def same_weights(first: dict, second: dict) -> bool:
    import torch

    a, b = first["model"], second["model"]
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def send_after_steps(process: subprocess.Popen, log: Path, steps: int, signum: int,
                     timeout: float = 180) -> bool:
    """Send ``signum`` once the log holds ``steps`` step records (False: it never did)."""
    def enough() -> bool:
        if process.poll() is not None:
            return True
        records, _ = read_log(log)
        return sum(r.get("event") == "step" for r in records) >= steps

    wait_for(enough, timeout)
    if process.poll() is not None:
        return False
    process.send_signal(signum)
    return True


SIGNALS = {"SIGINT": signal.SIGINT, "SIGTERM": signal.SIGTERM, "SIGHUP": signal.SIGHUP}
