"""Fault cases of class 5 (damaged inputs are caught), 6 (numbers that overflow are refused
before training) and 7 (no leftovers)."""

from __future__ import annotations

import gzip
import json
import os
import random
import shutil
import struct
import time
import zipfile
from pathlib import Path

import numpy as np

from tests.faults.cases_stops import KILL_EPOCHS, reference_files
from tests.faults.harness import (
    Outcome,
    Workspace,
    cli,
    leftovers,
    load_state,
    read_log,
    same_weights,
    write_idx,
)

# -- 5. damaged inputs -------------------------------------------------------------------------


def saved_checkpoint(ws: Workspace) -> Path:
    return ws.saved_run()[0]


def tensor_byte_ranges(path: Path) -> list[tuple[int, int]]:
    """Where the tensors' bytes lie in a checkpoint file: (offset, size) of each storage."""
    ranges = []
    with zipfile.ZipFile(path) as archive, open(path, "rb") as raw:
        for info in archive.infolist():
            if "/data/" not in info.filename or info.file_size < 8:
                continue
            raw.seek(info.header_offset)
            header = raw.read(30)
            name_length, extra_length = struct.unpack("<HH", header[26:30])
            ranges.append((info.header_offset + 30 + name_length + extra_length, info.file_size))
    return ranges


def flipped_checkpoint(ws: Workspace, seed: int, where: str) -> Outcome:
    """Two bytes flipped inside a weight tensor (``where="tensor"``) or anywhere in the file:
    the resume is refused as damaged, or (a flip in bytes nothing reads) resumes the very
    state that was saved; never a silent resume of other weights."""
    rng = random.Random(seed)
    outcome = Outcome(f"checkpoint with two bytes flipped ({where}, seed {seed})")
    folder = ws.scratch(f"flip-{where}-{seed}")
    path = folder / "run.pt"
    shutil.copy(saved_checkpoint(ws), path)
    data = bytearray(path.read_bytes())
    if where == "tensor":
        offset, size = rng.choice(tensor_byte_ranges(path))
        positions = [offset + rng.randrange(size) for _ in range(2)]
    else:
        positions = [rng.randrange(len(data)) for _ in range(2)]
    for position in positions:
        data[position] ^= 1 << rng.randrange(8)
    path.write_bytes(bytes(data))
    state = load_state(path)
    done = cli(ws.resume(path, "--max-steps", 7))
    if state is None:
        outcome.process(done.returncode, done.stderr, 1, "damaged")
        outcome.expect(path.read_bytes() == bytes(data), "the damaged file was replaced")
    else:
        original = load_state(saved_checkpoint(ws))
        outcome.expect(where != "tensor", "a flipped weight loaded as if intact", lost=True)
        outcome.expect(same_weights(state, original), "other weights loaded silently", lost=True)
        outcome.process(done.returncode, done.stderr, 0)
    return outcome


def truncated_checkpoint(ws: Workspace, fraction: float) -> Outcome:
    outcome = Outcome(f"checkpoint cut to {fraction:.0%}")
    folder = ws.scratch(f"truncated-{fraction}")
    path = folder / "run.pt"
    data = saved_checkpoint(ws).read_bytes()
    path.write_bytes(data[:int(len(data) * fraction)])
    done = cli(ws.resume(path))
    outcome.process(done.returncode, done.stderr, 1, "damaged")
    return outcome


def checkpoint_without_checksum(ws: Workspace) -> Outcome:
    """A checkpoint saved before checksums existed still resumes."""
    import torch

    outcome = Outcome("checkpoint without a checksum")
    folder = ws.scratch("no-checksum")
    path = folder / "run.pt"
    state = torch.load(saved_checkpoint(ws), weights_only=True)
    del state["checksum"]
    torch.save(state, path)
    done = cli(ws.resume(path, "--max-steps", 7))
    outcome.process(done.returncode, done.stderr, 0)
    outcome.expect((load_state(path) or {}).get("step") == 7, "the resumed run did not save")
    return outcome


RUN_DAMAGE = {
    "created text": {"created": "x"}, "created huge": {"created": 1e300},
    "seconds text": {"seconds": "long"}, "epochs negative": {"epochs_done": -1},
    "status number": {"status": 5}, "accuracy list": {"test_accuracy": [1]},
    "name null": {"name": None}, "steps float": {"steps": 2.5},
}


def damaged_run_file(ws: Workspace, variant: str, window: bool = False) -> Outcome:
    """A run.json with a field of the wrong type is listed as damaged; the run list (and,
    with ``window``, the whole window) still starts."""
    from resnet_gui.engine.runs import RUN_FILE, RunStore

    outcome = Outcome(f"run.json with {variant}")
    runs = ws.scratch(f"runs-{variant.replace(' ', '-')}")
    good = runs / "20240102-000000-good"
    damaged = runs / "20240101-000000-bad0"
    for folder, summary in ((good, {}), (damaged, RUN_DAMAGE[variant])):
        folder.mkdir()
        document = {"schema": "resnet-gui/run", "version": 1, "architecture": {}, "recipe": {},
                    "summary": {"name": "tiny", "created": 1.7e9, "status": "completed",
                                **summary}}
        (folder / RUN_FILE).write_text(json.dumps(document))
    (damaged / "log.json").write_text('{"steps": {"step": 3, "loss": "x"}, "epochs": []}')
    try:
        listed = {summary.run_id: summary for summary in RunStore(runs).list()}
        store = RunStore(runs)
        store.load(damaged.name)
    except Exception as error:  # the campaign counts any escape as a traceback
        outcome.traceback = True
        outcome.failures.append(f"{type(error).__name__}: {error}")
        return outcome
    outcome.expect(listed.get(damaged.name) is not None
                   and listed[damaged.name].status == "damaged", "not listed as damaged")
    outcome.expect(listed.get(good.name) is not None
                   and listed[good.name].status == "completed", "the good run is not listed")
    if window:
        shot = runs.parent / f"{runs.name}.png"
        done = cli(["--screenshot", shot], env_extra={"RESNET_GUI_RUNS": str(runs)})
        outcome.process(done.returncode, done.stderr, 0)
        outcome.expect(shot.is_file(), "the window did not start")
    return outcome


def _copy_data(ws: Workspace, name: str) -> Path:
    root = ws.scratch(name) / "data"
    shutil.copytree(ws.data, root)
    return root


IDX_DAMAGE = ("over-promise", "under-promise", "sparse-huge", "huge-header", "gz-over-promise",
              "zero-images", "bad-magic")


def prepare_damaged_idx(ws: Workspace, variant: str) -> tuple[Path, str]:
    """A copy of the data folder whose training images file is damaged as ``variant`` says;
    returns the folder and the words the refusal must hold."""
    root = _copy_data(ws, f"idx-{variant}")
    images = root / "FashionMNIST" / "raw" / "train-images-idx3-ubyte"
    labels = images.with_name("train-labels-idx1-ubyte")
    header = struct.pack(">BBBB", 0, 0, 8, 3)
    expected = "is corrupt"
    if variant == "over-promise":
        data = images.read_bytes()
        images.write_bytes(header + struct.pack(">3I", 100_000, 28, 28) + data[16:])
    elif variant == "under-promise":
        images.write_bytes(images.read_bytes() + bytes(5000))
    elif variant == "sparse-huge":
        with open(images, "r+b") as handle:
            handle.truncate(2**40)  # 1 TiB of holes after the real images
    elif variant == "huge-header":  # a header that matches a 1 TiB sparse file exactly
        with open(images, "wb") as handle:
            handle.write(header + struct.pack(">3I", 2**12, 2**14, 2**14))
            handle.truncate(16 + 2**40)
        expected = "more than half of this machine's memory"
    elif variant == "gz-over-promise":
        data = images.read_bytes()
        images.unlink()
        with gzip.open(images.with_name(images.name + ".gz"), "wb") as handle:
            handle.write(header + struct.pack(">3I", 1000, 28, 28) + data[16:])
    elif variant == "zero-images":
        write_idx(images, np.zeros((0, 28, 28), np.uint8))
        write_idx(labels, np.zeros((0,), np.uint8))
        expected = "holds no training images"
    else:
        images.write_bytes(b"\x1f\x8bnot idx")
        expected = "is not an IDX file"
    return root, expected


def damaged_idx(ws: Workspace, variant: str) -> Outcome:
    """An IDX file whose header does not match its contents, or that is huge: one sentence,
    before reading (never a MemoryError), and quickly."""
    outcome = Outcome(f"IDX file: {variant}")
    root, expected = prepare_damaged_idx(ws, variant)
    began = time.monotonic()
    done = cli(["train", ws.arch, "--data-dir", root, "--no-progress", "--max-steps", 1])
    outcome.process(done.returncode, done.stderr, 1, expected)
    outcome.expect("MemoryError" not in done.stderr, "a MemoryError")
    outcome.expect(time.monotonic() - began < 120, "it took minutes: the file was read")
    return outcome


# -- 6. numbers that overflow ------------------------------------------------------------------

BAD_NUMBERS = (("--lr", "1e39", "lr"), ("--lr", "1e300", "lr"), ("--lr", "1001", "lr"),
               ("--weight-decay", "1e300", "weight_decay"),
               ("--weight-decay", "1e39", "weight_decay"), ("--weight-decay", "11", "weight_decay"),
               ("--warmup-epochs", "1e300", "warmup_epochs"))


def overflowing_number(ws: Workspace, option: str, value: str, setting: str) -> Outcome:
    outcome = Outcome(f"{option} {value}")
    folder = ws.scratch(f"number-{option}-{value}")
    done = cli(ws.train(f"{option}={value}", "--checkpoint", folder / "run.pt"))
    outcome.process(done.returncode, done.stderr, 1, f"training setting '{setting}'")
    outcome.expect("training on" not in done.stderr, "training started")
    outcome.expect(os.listdir(folder) == [], "files were written")
    return outcome


# -- 7. no leftovers ---------------------------------------------------------------------------


def finished_resume(ws: Workspace) -> Outcome:
    """Resuming a run that completed says so: exit 0, an end record without nulls."""
    outcome = Outcome("resume of a finished run")
    folder = ws.scratch("finished")
    checkpoint, log = folder / "run.pt", folder / "run.jsonl"
    for source, copy in zip(reference_files(ws), (checkpoint, log)):
        shutil.copyfile(source, copy)
    saved = checkpoint.read_bytes()
    again = cli(ws.resume(checkpoint, "--log", log))
    outcome.process(again.returncode, again.stderr, 0)
    outcome.expect(f"already completed its {KILL_EPOCHS} epochs" in again.stderr,
                   "it does not say finished")
    records, _ = read_log(log)
    end = records[-1] if records else {}
    outcome.expect(end.get("event") == "end" and end.get("reason") == "completed"
                   and None not in end.values(), f"end record {end}")
    outcome.expect(checkpoint.read_bytes() == saved, "the checkpoint was rewritten")
    outcome.expect(not leftovers(folder), f"left over: {leftovers(folder)}")
    return outcome
