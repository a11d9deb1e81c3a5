"""Training in the window on the CPU: does the window stay responsive, do the plots keep up,
and does training go as fast as without a window?

Measured in one process, after one discarded warm-up run of each, alternating headless and
in-window runs (in turn first) with the same architecture, recipe and data (real Fashion-MNIST from ../shared/data or RESNET_GUI_DATA):

- event-loop stalls: a 5 ms QTimer probe in the GUI thread; a stall is a gap beyond the
  interval. Targets: max <= 100 ms, p99 <= 50 ms.
- plot refreshes: redraws with new data per second while events arrive faster than 10 a
  second, and the delay from an event reaching the GUI thread to the redraw showing it.
  Target: >= 10 refreshes a second.
- throughput: the trainer's examples/s (warm-up steps excluded) in the window against the
  same run headless, median of the repetitions. Target: >= 90 %.

Two settings: "events" trains a small network fast, so the trainer sends its maximum of ~30
events a second (the GUI's worst case); "throughput" trains resnet20 with the fmnist-fast
recipe at batch 256, a run a user would watch.

    .venv/bin/python benchmarks/bench_window_training.py [--repeats 3] [--steps 40]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
from PySide6.QtCore import QElapsedTimer, QEventLoop, Qt, QTimer  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication, QTabWidget  # noqa: E402

from resnet_gui.engine.data import load_data  # noqa: E402
from resnet_gui.engine.runs import RunStore  # noqa: E402
from resnet_gui.engine.trainer import Trainer  # noqa: E402
from resnet_gui.qt.train.panel import TrainingPanel  # noqa: E402
from resnet_gui.arch.model import Architecture, Stage, Stem  # noqa: E402
from resnet_gui.arch.presets import build_preset  # noqa: E402
from resnet_gui.arch.recipe import RECIPE_PRESETS  # noqa: E402

PROBE_MS = 5


def make_window(arch: Architecture, store: RunStore, data):
    """The real main window with ``arch`` loaded, its runs kept in ``store`` and every recipe
    served ``data``, shown at 1600x1000 on its Train tab."""
    from resnet_gui.qt import create_main_window

    window = create_main_window(run_store=store, data_loader=lambda recipe: data)
    window.document.reset(arch)
    window.resize(1600, 1000)
    window.show()
    tabs = window.findChild(QTabWidget)
    tabs.setCurrentWidget(window.findChild(TrainingPanel))
    return window


def headless(arch, recipe, data) -> float:
    return Trainer(arch, recipe, data=data).run().examples_per_sec


def in_window(app, arch, recipe, data) -> dict:
    """One run started from the panel; the GUI thread is probed while it trains."""
    with tempfile.TemporaryDirectory() as runs:
        window = make_window(arch, RunStore(runs), data)
        panel = window.findChild(TrainingPanel)
        panel.form.set_recipe(recipe)
        # A user presses Start in a window that has been on screen for a while: let this one
        # be exposed and painted first, so its first paint is not counted as a stall.
        QTest.qWaitForWindowExposed(window, 5000)
        QTest.qWait(300)
        session = panel.session

        ticks: list[float] = []
        clock = QElapsedTimer()
        clock.start()
        probe = QTimer()
        probe.setTimerType(Qt.TimerType.PreciseTimer)
        probe.setInterval(PROBE_MS)
        gui_cpu: list[float] = []  # this (GUI) thread's CPU seconds at each probe tick
        probe.timeout.connect(lambda: (ticks.append(clock.nsecsElapsed() / 1e9),
                                       gui_cpu.append(time.thread_time())))
        arrivals: list[float] = []
        redraws: list[float] = []
        session.step.connect(lambda _event: arrivals.append(clock.nsecsElapsed() / 1e9))
        panel.plots.refreshed.connect(lambda: redraws.append(clock.nsecsElapsed() / 1e9))
        ends = []
        window_span = []
        session.run_started.connect(lambda _e: window_span.append(clock.nsecsElapsed() / 1e9))
        session.run_ended.connect(ends.append)
        loop = QEventLoop()
        session.idle.connect(loop.quit)
        probe.start()
        panel.start_button.click()
        loop.exec()
        probe.stop()
        window_span.append(clock.nsecsElapsed() / 1e9)
        window.close()
        window.deleteLater()
        app.processEvents()

    start, stop = window_span[0], window_span[-1]
    inside = [i for i, t in enumerate(ticks) if start <= t <= stop]
    live = np.array([ticks[i] for i in inside])
    cpu = [gui_cpu[i] for i in inside]
    gaps = np.diff(live) * 1000.0
    stalls = np.maximum(gaps - PROBE_MS, 0.0)
    live_redraws = [t for t in redraws if start <= t <= stop]
    # Delay from an event's arrival to the first redraw at or after it.
    redraw_times = np.array(redraws)
    delays = []
    for arrival in arrivals:
        after = redraw_times[redraw_times >= arrival]
        if len(after):
            delays.append((after[0] - arrival) * 1000.0)
    seconds = stop - start
    return {
        "examples_per_sec": ends[0].examples_per_sec if ends else float("nan"),
        "stall_max_ms": float(stalls.max()) if len(stalls) else float("nan"),
        "stall_p99_ms": float(np.percentile(stalls, 99)) if len(stalls) else float("nan"),
        "events_per_sec": len(arrivals) / seconds if seconds > 0 else float("nan"),
        "refreshes_per_sec": len(live_redraws) / seconds if seconds > 0 else float("nan"),
        "refresh_delay_max_ms": max(delays) if delays else float("nan"),
        "seconds": seconds,
        # The probe's own ticks included (a few per cent), so this is an upper bound.
        "gui_cpu_percent": 100.0 * (cpu[-1] - cpu[0]) / (live[-1] - live[0]) if len(cpu) > 1
        else float("nan"),
        # Where the longest stalls happened, seconds into the run: start, middle or end?
        "worst_stalls": sorted(((float(stalls[i]), float(live[i] - start))
                                for i in np.argsort(stalls)[-3:]), reverse=True),
    }


def tiny_architecture() -> Architecture:
    return Architecture(
        name="small", stem=Stem(width=16, kernel=3, stride=1, max_pool=False),
        stages=(Stage(blocks=("basic",), width=16), Stage(blocks=("basic",), width=32, stride=2)),
        in_channels=1, num_classes=10, input_size=(28, 28))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=40, help="optimizer steps per run")
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--verbose", action="store_true", help="say where the stalls were")
    args = parser.parse_args()

    app = QApplication.instance() or QApplication([])
    fast = RECIPE_PRESETS["fmnist-fast"]
    settings = {
        "events": (tiny_architecture(),
                   fast.replace(batch_size=16, device="cpu", limit_train=8000, limit_test=500,
                                data_dir=args.data_dir, max_steps=args.steps * 8)),
        "throughput": (build_preset("resnet20", 1, 10, 28),
                       fast.replace(device="cpu", limit_train=12800, limit_test=500,
                                    data_dir=args.data_dir, max_steps=args.steps)),
    }
    import torch

    print(f"CPU threads: {torch.get_num_threads()}; Qt platform: {app.platformName()}; "
          f"{args.repeats} repetitions, alternating headless and window")
    failures = 0
    for name, (arch, recipe) in settings.items():
        data = load_data(recipe)
        # Warm-up, discarded: imports, the allocator, oneDNN's kernels for these shapes (the
        # first full run is often several times slower than the next ones).
        headless(arch, recipe, data)
        in_window(app, arch, recipe, data)
        base, window_runs = [], []
        for repeat in range(args.repeats):  # alternate the order: drift hits both sides
            if repeat % 2:
                window_runs.append(in_window(app, arch, recipe, data))
                base.append(headless(arch, recipe, data))
            else:
                base.append(headless(arch, recipe, data))
                window_runs.append(in_window(app, arch, recipe, data))
        ratio = statistics.median(
            w["examples_per_sec"] / b for w, b in zip(window_runs, base))

        def worst(key):
            return max(run[key] for run in window_runs)

        def median(key):
            return statistics.median(run[key] for run in window_runs)

        print(f"\n[{name}] {arch.name}, batch {recipe.batch_size}, {recipe.max_steps} steps, "
              f"{data.num_train:,} training images")
        print(f"  headless examples/s: {', '.join(f'{v:.0f}' for v in base)}")
        speeds = ", ".join(f"{run['examples_per_sec']:.0f}" for run in window_runs)
        print(f"  window   examples/s: {speeds}")
        print(f"  throughput in the window: {100 * ratio:.1f} % of headless (median; target "
              f">= 90 %)")
        print(f"  event-loop stall: max {worst('stall_max_ms'):.1f} ms (target <= 100), p99 "
              f"{worst('stall_p99_ms'):.1f} ms (target <= 50), worst of the runs")
        print(f"  GUI thread CPU while training: {median('gui_cpu_percent'):.1f} % of one core "
              "(median, probe included)")
        print(f"  events reaching the GUI: {median('events_per_sec'):.1f}/s; plot refreshes: "
              f"{median('refreshes_per_sec'):.1f}/s (target >= 10 while events arrive faster "
              f"than the 12.5/s redraw timer);"
              f" event-to-redraw delay max {worst('refresh_delay_max_ms'):.0f} ms")
        if args.verbose:
            for run in window_runs:
                print("  longest stalls (ms at s into the run, of "
                      f"{run['seconds']:.1f} s): " + ", ".join(
                          f"{ms:.0f} at {at:.1f}" for ms, at in run["worst_stalls"]))
        failures += ratio < 0.9
        failures += worst("stall_max_ms") > 100 or worst("stall_p99_ms") > 50
        if median("events_per_sec") >= 12.5:
            failures += median("refreshes_per_sec") < 10
    print("\nall targets met" if not failures else f"\n{failures} target(s) missed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
