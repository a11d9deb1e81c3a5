"""The fault campaign of issue 9, long version: every class of fault, many cases each, and
kill -9 trials whose resumed runs must end bit for bit where the uninterrupted run ends.

    python benchmarks/bench_faults.py [--kill-trials 30] [--seed 0] [--only CLASS]

Prints the cases tried, how many were clean, how many printed a traceback and how many lost
or corrupted data (or exited 0 after a failure), then each case that was not clean. The same
case functions run, a few each, in tests/faults/. A correctness campaign, not a timing: it
takes about half an hour on a 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.faults import cases_inputs, cases_outputs, cases_stops, cases_streams  # noqa: E402
from tests.faults.harness import Outcome, Workspace, make_workspace  # noqa: E402

Case = Callable[[Workspace], Outcome]


def output_cases() -> list[Case]:
    kinds = ("device", "fifo", "socket") if os.geteuid() == 0 else ("fifo", "socket")
    found = [lambda ws, k=kind, o=option: cases_outputs.special_output(ws, k, o)
             for kind in kinds for option in ("export", "log", "checkpoint", "resume")]
    found += [lambda ws, o=option: cases_outputs.symlink_output(ws, o)
              for option in ("export", "checkpoint", "log")]
    found += [lambda ws, v=variant: cases_outputs.same_file_outputs(ws, v)
              for variant in ("equal", "symlink", "hardlink", "prev")]
    found += [lambda ws, o=option, v=variant: cases_outputs.foreign_file(ws, o, v)
              for option in ("log", "checkpoint") for variant in cases_outputs.FOREIGN]
    found.append(cases_outputs.unfinished_checkpoint)
    found.append(cases_outputs.hard_linked_log)
    found += [lambda ws, f=fmt: cases_outputs.export_onto_input(ws, f) for fmt in ("py", "json")]
    found += [lambda ws, f=fmt: cases_outputs.export_to_dev_stdout(ws, f)
              for fmt in ("py", "json")]
    return found


def stop_cases(rng: random.Random) -> list[Case]:
    found = [lambda ws, n=name, s=rng.randint(1, 15), r=name == "SIGTERM":
             cases_stops.signal_mid_run(ws, n, s, resume=r)
             for name in ("SIGINT", "SIGTERM", "SIGHUP") for _ in range(3)]
    pairs = (("SIGTERM", "SIGTERM"), ("SIGINT", "SIGINT"), ("SIGTERM", "SIGHUP"),
             ("SIGHUP", "SIGINT"))
    found += [lambda ws, a=first, b=second, s=rng.randint(1, 10), g=gap:
              cases_stops.two_signals(ws, a, b, s, g)
              for first, second in pairs
              for gap in (0.0, rng.uniform(0.005, 0.05), rng.uniform(0.05, 0.3))]
    found += [lambda ws, n=name, d=delay: cases_stops.signal_while_loading(ws, n, d)
              for name in ("SIGINT", "SIGTERM", "SIGHUP") for delay in (0.5, 2.0)]
    return found


def stream_cases() -> list[Case]:
    found = [lambda ws, n=lines: cases_streams.closed_stderr(ws, n) for lines in (1, 2, 4)]
    found.append(cases_streams.full_stderr)
    found += [lambda ws, r=room: cases_streams.log_size_limit(ws, r) for room in (0, 300, 3000)]
    found += [lambda ws, n=limit: cases_streams.checkpoint_size_limit(ws, n)
              for limit in (10_000, 30_000)]
    found += [lambda ws, f=free: _skip_unless_mountable(cases_streams.full_disk, ws, f)
              for free in (60_000, 150_000)]
    found += [lambda ws, c=command, h=how: cases_streams.stdout_gone(ws, c, h)
              for command in cases_streams.STDOUT_COMMANDS
              for how in ("full", "closed", "reader gone")]
    found.append(cases_streams.log_reader_gone)
    found += [lambda ws, s=shared: cases_streams.two_runs(ws, s)
              for shared in ("checkpoint", "log", "checkpoint via a link")]
    return found


def input_cases(rng: random.Random) -> list[Case]:
    found = [lambda ws, s=rng.randrange(10**6), w=where: cases_inputs.flipped_checkpoint(ws, s, w)
             for where in ("tensor", "anywhere") for _ in range(10)]
    found += [lambda ws, f=fraction: cases_inputs.truncated_checkpoint(ws, f)
              for fraction in (0.1, 0.5, 0.9)]
    found.append(cases_inputs.checkpoint_without_checksum)
    found += [lambda ws, v=variant, w=index == 0: cases_inputs.damaged_run_file(ws, v, w)
              for index, variant in enumerate(cases_inputs.RUN_DAMAGE)]
    found += [lambda ws, v=variant: cases_inputs.damaged_idx(ws, v)
              for variant in cases_inputs.IDX_DAMAGE]
    found += [lambda ws, b=bad: cases_inputs.overflowing_number(ws, *b)
              for bad in cases_inputs.BAD_NUMBERS]
    found.append(cases_inputs.finished_resume)
    return found


def _skip_unless_mountable(case, ws: Workspace, free: int) -> Outcome | None:
    try:
        return case(ws, free)
    except OSError as error:
        print(f"  skipped: {error}", flush=True)
        return None


def run_case(case: Case, ws: Workspace) -> Outcome | None:
    began = time.monotonic()
    try:
        outcome = case(ws)
    except Exception as error:  # a harness failure (a timeout, say) counts against the case
        outcome = Outcome(getattr(case, "__name__", "case"))
        outcome.failures.append(f"harness error: {type(error).__name__}: {error}")
    if outcome is not None:
        mark = "clean" if outcome.clean else "NOT CLEAN"
        print(f"  {mark:9} {time.monotonic() - began:5.1f} s  {outcome.name}"
              + ("" if outcome.clean else f": {'; '.join(outcome.failures)}"), flush=True)
    return outcome


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kill-trials", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", choices=("outputs", "stops", "streams", "inputs", "kill"))
    args = parser.parse_args()
    rng = random.Random(args.seed)
    groups = {"outputs": output_cases(), "stops": stop_cases(rng), "streams": stream_cases(),
              "inputs": input_cases(rng)}
    root = Path(tempfile.mkdtemp(prefix="resnet-gui-faults-"))
    ws = make_workspace(root)
    outcomes: list[Outcome] = []
    print(f"fault campaign on {platform.node()} ({os.cpu_count()} cores), seed {args.seed}",
          flush=True)
    try:
        for name, group in groups.items():
            if args.only in (None, name):
                print(f"{name}: {len(group)} cases", flush=True)
                outcomes += [o for o in (run_case(case, ws) for case in group) if o is not None]
        kills = 0
        if args.only in (None, "kill"):
            print(f"kill -9: {args.kill_trials} trials", flush=True)
            reference = cases_stops.reference_run(ws)
            for trial in range(args.kill_trials):
                outcome = run_case(lambda w, t=trial: cases_stops.kill9_trial(
                    w, reference, args.seed * 1000 + t), ws)
                outcomes.append(outcome)
                kills += outcome.kills
    finally:
        shutil.rmtree(root, ignore_errors=True)
    trials = sum(o.name.startswith("kill -9") for o in outcomes)
    print()
    print(f"cases tried: {len(outcomes)} ({len(outcomes) - trials} cases, {trials} kill -9 "
          f"trials with {kills} kills)")
    print(f"clean: {sum(o.clean for o in outcomes)}")
    print(f"tracebacks: {sum(o.traceback for o in outcomes)}")
    print(f"data lost: {sum(o.data_lost for o in outcomes)}")
    for outcome in outcomes:
        if not outcome.clean:
            print(f"  not clean: {outcome.report()}")
    return 0 if all(o.clean for o in outcomes) else 1


if __name__ == "__main__":
    raise SystemExit(main())
