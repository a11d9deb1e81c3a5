"""A screenshot of the Train tab with its block telemetry heatmap, after a short real run
(for the README).

    .venv/bin/python scripts/screenshot_telemetry.py [--data-dir ../shared/data] \
        [--out docs/images/train-telemetry.png]

Trains resnet20 with the fmnist-fast recipe on a few hundred real Fashion-MNIST training images
(--limit-train), sampling every block every --every steps, waits for the run to end, points
at one heatmap cell (its hover text shows) and saves the window. Run it with XDG_CONFIG_HOME
pointing at a scratch folder: the window keeps its settings there.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
# The screenshot set-up they share: offscreen Qt, the repository on the path, the window.
from screenshot_training import REPO, make_window, pump  # noqa: E402

from PySide6.QtCore import QEventLoop  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from resnet_gui.arch.presets import build_preset  # noqa: E402
from resnet_gui.arch.recipe import RECIPE_PRESETS  # noqa: E402
from resnet_gui.engine.runs import RunStore  # noqa: E402
from resnet_gui.qt.train.panel import TrainingPanel  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--out", default=str(REPO / "docs" / "images" / "train-telemetry.png"))
    parser.add_argument("--limit-train", type=int, default=640)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--every", type=int, default=2, help="telemetry interval in steps")
    args = parser.parse_args()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)

    app = QApplication.instance() or QApplication([])
    recipe = RECIPE_PRESETS["fmnist-fast"].replace(
        epochs=args.epochs, batch_size=32, limit_train=args.limit_train, limit_test=500,
        data_dir=args.data_dir)
    arch = build_preset("resnet20", 1, 10, 28)
    from resnet_gui.engine.data import load_data

    data = load_data(recipe)
    with tempfile.TemporaryDirectory() as runs:
        window = make_window(arch, RunStore(runs), data)
        panel = window.findChild(TrainingPanel)
        panel.form.set_recipe(recipe)
        panel.observe.every_spin.setValue(args.every)
        loop = QEventLoop()
        panel.session.idle.connect(loop.quit)
        started = time.process_time()
        panel.start_button.click()
        loop.exec()
        cpu = time.process_time() - started
        pump(app, 0.5)
        heatmap = panel.heatmap
        heatmap.refresh()
        rows, columns = heatmap.shown.shape
        print(heatmap.show_hover(rows - 2, columns * 3 // 4))
        pump(app, 0.3)
        window.grab().save(str(out))
        summary = panel.session.list_runs()[0]
        print(f"{summary.status}: test accuracy {summary.test_accuracy}, {summary.epochs_done} "
              f"epochs, {columns} samples of {rows} blocks, {cpu:.0f} CPU-seconds")
        panel.session.shutdown()
        window.close()
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
