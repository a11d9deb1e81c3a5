"""Screenshots of the window training on real Fashion-MNIST, taken mid-run (for the README).

    .venv/bin/python scripts/screenshot_training.py [--data-dir ../shared/data] [--out docs/]

Trains resnet20 with the fmnist-fast recipe on 10,000 training images (--limit-train) and takes
the Train tab after --epochs-before epochs plus a little, then the Inspect tab's feature maps
and its confusion page, while the run goes on; then stops the run. Run it with
XDG_CONFIG_HOME pointing at a scratch folder: the window keeps its settings there.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from PySide6.QtCore import QEventLoop, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication, QTabWidget  # noqa: E402

from resnet_gui.engine.runs import RunStore  # noqa: E402
from resnet_gui.qt.inspect.panel import InspectPanel  # noqa: E402
from resnet_gui.qt.train.panel import TrainingPanel  # noqa: E402
from resnet_gui.arch.presets import build_preset  # noqa: E402
from resnet_gui.arch.recipe import RECIPE_PRESETS  # noqa: E402

sys.path.insert(0, str(REPO / "benchmarks"))
from bench_window_training import make_window  # noqa: E402


def pump(app: QApplication, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--out", default=str(REPO / "docs"))
    parser.add_argument("--epochs-before", type=int, default=3)
    parser.add_argument("--limit-train", type=int, default=10_000,
                        help="training images (fewer make the shots quicker on a slow machine)")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    app = QApplication.instance() or QApplication([])
    recipe = RECIPE_PRESETS["fmnist-fast"].replace(
        epochs=8, limit_train=args.limit_train, limit_test=2_000, data_dir=args.data_dir)
    arch = build_preset("resnet20", 1, 10, 28)
    from resnet_gui.engine.data import load_data

    data = load_data(recipe)
    with tempfile.TemporaryDirectory() as runs:
        window = make_window(arch, RunStore(runs), data)
        panel = window.findChild(TrainingPanel)
        inspect = window.findChild(InspectPanel)
        tabs = window.findChild(QTabWidget)
        panel.form.set_recipe(recipe)
        session = panel.session
        session.request_probe("layer1.0.conv1", 0)  # the worker probes this at epoch ends
        loop = QEventLoop()
        session.epoch.connect(
            lambda event: event.epoch + 1 >= args.epochs_before and QTimer.singleShot(
                15_000, loop.quit))
        session.idle.connect(loop.quit)
        panel.start_button.click()
        loop.exec()
        pump(app, 0.5)
        window.grab().save(str(out / "training-window.png"))
        tabs.setCurrentWidget(inspect)
        pump(app, 1.0)
        window.grab().save(str(out / "feature-maps.png"))
        inspect.pages.setCurrentIndex(1)
        pump(app, 0.5)
        window.grab().save(str(out / "confusion.png"))
        session.shutdown()
        window.close()
    print(f"wrote {out / 'training-window.png'}, feature-maps.png, confusion.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
