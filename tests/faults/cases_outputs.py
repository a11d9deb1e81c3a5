"""Fault cases of class 1: output paths never destroy what is not ours.

Each case works in its own folder of a shared :class:`Workspace`, runs the real command line in
a subprocess and returns an :class:`Outcome`; tests/faults/ runs a few, bench_faults.py many.
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
import tempfile
from pathlib import Path

from tests.faults.harness import (
    Outcome,
    Workspace,
    cli,
    leftovers,
    load_state,
    log_problems,
    read_log,
)

# -- 1. output paths never destroy what is not ours --------------------------------------------

NODE_WORDS = {"device": "a device", "fifo": "a pipe", "socket": "a socket"}


def make_node(path: Path, kind: str) -> None:
    """A character device (/dev/null's numbers: needs root), a named pipe or a socket."""
    if kind == "device":
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    elif kind == "fifo":
        os.mkfifo(path)
    else:  # AF_UNIX paths are short: bind in a short folder, then move the socket file
        short = Path(tempfile.mkdtemp(prefix="s", dir="/tmp"))
        with socket.socket(socket.AF_UNIX) as server:
            server.bind(str(short / "s"))
        os.rename(short / "s", path)
        short.rmdir()


def _node_kind(path: Path) -> str | None:
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return None
    return ("device" if stat.S_ISCHR(mode) else "fifo" if stat.S_ISFIFO(mode)
            else "socket" if stat.S_ISSOCK(mode) else "file")


def special_output(ws: Workspace, kind: str, option: str) -> Outcome:
    """A device, pipe or socket given as an output (or as --resume) is refused in one
    sentence and is still there, untouched."""
    outcome = Outcome(f"{kind} as {option}")
    folder = ws.scratch(f"special-{kind}-{option}")
    node = folder / "out"
    make_node(node, kind)
    args = {"export": ["export", "resnet20", "--format", "json", "--out", node],
            "log": ws.train("--log", node, "--max-steps", 2),
            "checkpoint": ws.train("--checkpoint", node, "--max-steps", 2),
            "resume": ws.resume(node)}[option]
    done = cli(args, timeout=120)
    outcome.process(done.returncode, done.stderr, 1, f"is {NODE_WORDS[kind]}, not a file")
    outcome.expect(_node_kind(node) == kind, f"the {kind} was replaced", lost=True)
    outcome.expect(os.listdir(folder) == ["out"], f"files were written: {os.listdir(folder)}")
    return outcome


def symlink_output(ws: Workspace, option: str) -> Outcome:
    """Outputs are written through a symbolic link: the target is replaced, the link stays."""
    outcome = Outcome(f"symlink as {option}")
    folder = ws.scratch(f"symlink-{option}")
    (folder / "real").mkdir()
    suffix = {"export": ".json", "checkpoint": ".pt", "log": ".jsonl"}[option]
    target, link = folder / "real" / f"file{suffix}", folder / f"link{suffix}"
    link.symlink_to(target)
    if option == "export":
        target.write_text("old")
        args = ["export", "resnet20", "--format", "json", "--out", link]
    elif option == "checkpoint":
        args = ws.train("--checkpoint", link, "--max-steps", 3)
    else:
        args = ws.train("--log", link, "--max-steps", 3)
    done = cli(args)
    outcome.process(done.returncode, done.stderr, 0)
    outcome.expect(link.is_symlink() and os.readlink(link) == str(target),
                   "the link was replaced by a file", lost=True)
    if option == "export":
        outcome.expect('"resnet-gui/architecture"' in target.read_text(),
                       "the link's target was not written")
    elif option == "checkpoint":
        outcome.expect(load_state(target) is not None, "no checkpoint at the link's target")
        again = cli(ws.resume(link, "--max-steps", 5))
        outcome.process(again.returncode, again.stderr, 0)
        outcome.expect((folder / "real" / "file.prev.pt").is_file(),
                       "the previous checkpoint is not beside the target")
        outcome.expect(link.is_symlink(), "the resumed run replaced the link", lost=True)
    else:
        outcome.expect(not log_problems(target) and read_log(target)[0],
                       "the log's target holds no whole records")
    outcome.expect(not leftovers(folder) and not leftovers(folder / "real"), "files left over")
    return outcome


def same_file_outputs(ws: Workspace, variant: str) -> Outcome:
    """--log and --checkpoint naming one file (directly, through a link or a hard link, or
    the checkpoint's .prev) are refused before anything is written."""
    outcome = Outcome(f"--log and --checkpoint the same file ({variant})")
    folder = ws.scratch(f"same-{variant}")
    checkpoint = folder / "run.pt"
    log = {"equal": checkpoint, "symlink": folder / "link.jsonl", "hardlink": folder / "hard.jsonl",
           "prev": folder / "run.prev.pt"}[variant]
    if variant == "symlink":
        log.symlink_to(checkpoint)
    elif variant == "hardlink":
        checkpoint.write_bytes(b"")
        os.link(checkpoint, log)
    before = sorted(os.listdir(folder))
    done = cli(ws.train("--checkpoint", checkpoint, "--log", log, "--max-steps", 2))
    outcome.process(done.returncode, done.stderr, 1, "name the same file")
    outcome.expect(sorted(os.listdir(folder)) == before, "files were written")
    return outcome


def hard_linked_log(ws: Workspace) -> Outcome:
    """A --log with another name (a hard link) is refused: the lock goes by name."""
    outcome = Outcome("--log with a second name")
    folder = ws.scratch("hard-linked-log")
    log = folder / "run.jsonl"
    log.write_bytes(b'{"event": "step", "step": 1}\n')
    os.link(log, folder / "other.jsonl")
    done = cli(ws.train("--log", log, "--max-steps", 2))
    outcome.process(done.returncode, done.stderr, 1, "has other names (hard links)")
    outcome.expect(log.read_bytes() == b'{"event": "step", "step": 1}\n', "the log changed",
                   lost=True)
    return outcome


FOREIGN = {"zip": b"PK\x03\x04\x14\x00\x00\x00 not really a checkpoint", "text": b"my notes\n",
           "json": b'{"name": "not a log"}\n', "binary": bytes(range(256)) * 4}


def foreign_file(ws: Workspace, option: str, variant: str) -> Outcome:
    """An existing file that is not resnet-gui's (a --log that is no log, a --checkpoint that
    is no checkpoint) is refused and left as it was."""
    outcome = Outcome(f"foreign {variant} file as --{option}")
    folder = ws.scratch(f"foreign-{option}-{variant}")
    path = folder / ("notes.jsonl" if option == "log" else "model.pt")
    path.write_bytes(FOREIGN[variant])
    done = cli(ws.train(f"--{option}", path, "--max-steps", 2))
    what = "is not a resnet-gui log" if option == "log" else "is not a resnet-gui checkpoint"
    outcome.process(done.returncode, done.stderr, 1, what)
    outcome.expect(path.read_bytes() == FOREIGN[variant], "the file was changed", lost=True)
    outcome.expect(os.listdir(folder) == [path.name], "files were written")
    return outcome


def unfinished_checkpoint(ws: Workspace) -> Outcome:
    """Re-running a command over a checkpoint of an unfinished run is refused (it would
    erase the run); with --overwrite it starts over in its place."""
    outcome = Outcome("new run over an unfinished checkpoint, then with --overwrite")
    folder = ws.scratch("unfinished")
    checkpoint, _ = ws.copy_saved(folder)
    saved = checkpoint.read_bytes()
    again = cli(ws.train("--checkpoint", checkpoint, "--max-steps", 2))
    outcome.process(again.returncode, again.stderr, 1, "holds an unfinished run")
    outcome.expect(checkpoint.read_bytes() == saved, "the unfinished run was erased", lost=True)
    replaced = cli(ws.train("--checkpoint", checkpoint, "--max-steps", 2, "--overwrite"))
    outcome.process(replaced.returncode, replaced.stderr, 0)
    state = load_state(checkpoint)
    outcome.expect(state is not None and state["step"] == 2, "--overwrite did not start over")
    return outcome


def export_onto_input(ws: Workspace, fmt: str) -> Outcome:
    """An export never replaces the architecture file it reads."""
    outcome = Outcome(f"export --format {fmt} onto its input")
    folder = ws.scratch(f"onto-input-{fmt}")
    source = folder / "net.json"
    shutil.copy(ws.arch, source)
    before = source.read_bytes()
    done = cli(["export", source, "--format", fmt, "--out", source])
    outcome.process(done.returncode, done.stderr, 1, "never replaces its input")
    outcome.expect(source.read_bytes() == before, "the architecture file was replaced", lost=True)
    return outcome


def export_to_dev_stdout(ws: Workspace, fmt: str) -> Outcome:
    """``--out /dev/stdout`` writes through to the pipe, like ``--out -``."""
    outcome = Outcome(f"export --format {fmt} --out /dev/stdout")
    done = cli(["export", "resnet20", "--format", fmt, "--out", "/dev/stdout"])
    outcome.process(done.returncode, done.stderr, 0)
    outcome.expect(("def build_model" if fmt == "py" else '"stages"') in done.stdout,
                   "nothing arrived on standard output")
    return outcome
