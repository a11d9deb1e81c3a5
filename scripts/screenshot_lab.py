"""Screenshots of the Lab tab's three views with real results (for the README and docs/).

    .venv/bin/python scripts/screenshot_lab.py [--data-dir ../shared/data] [--out docs/images]

Trains ResNet-20/56 and their plain twins on a small subset of real Fashion-MNIST through the
degradation view (the runs go into a scratch run store), then runs the lesion study and the
loss landscape on the trained ResNet-20 and plain-20, and grabs each view offscreen. The
budget is tiny (a screenshot, not a measurement): the captions and tables say what it
reached. Run it with XDG_CONFIG_HOME pointing at a scratch folder.
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

from PySide6.QtWidgets import QApplication

from resnet_gui.engine.runs import RunStore
from resnet_gui.qt.app import _application, create_main_window
from resnet_gui.qt.build.analysis_worker import WorkerProcess

SIZE = (1500, 950)


def wait_for(app: QApplication, view, timeout_s: float = 1800) -> None:
    end = time.monotonic() + timeout_s
    while view.worker.busy and time.monotonic() < end:
        app.processEvents()
        time.sleep(0.02)
    for _ in range(20):
        app.processEvents()
        time.sleep(0.02)


def grab(window, view, path: Path) -> None:
    window.lab_tab.views.setCurrentWidget(view)
    QApplication.processEvents()
    window.grab().save(str(path))
    print(f"wrote {path}: {view.bar.status.text()}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", default=str(REPO.parent.parent / "shared" / "data"))
    parser.add_argument("--out", default=str(REPO / "docs" / "images"))
    parser.add_argument("--depths", default="20,56")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--limit-train", type=int, default=1000)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    app = _application()
    WorkerProcess.enabled = False
    store = RunStore(Path(tempfile.mkdtemp(prefix="lab-shots-")) / "runs")
    window = create_main_window("resnet20", run_store=store, data_dir=args.data_dir)
    window.quiet_errors = True
    window.setGeometry(0, 0, *SIZE)
    window.show()
    window.wait_until_settled()
    window.tabs.setCurrentWidget(window.lab_tab)
    lab = window.lab_tab

    degradation = lab.degradation
    depths = {int(d) for d in args.depths.split(",")}
    for depth, box in degradation.depth_boxes.items():
        box.setChecked(depth in depths)
    degradation.epochs_spin.setValue(args.epochs)
    degradation.limit_spin.setValue(args.limit_train)
    assert degradation.start(), degradation.bar.status.text()
    wait_for(app, degradation)
    grab(window, degradation, out / "lab-degradation.png")

    runs = {run.network: run.checkpoint for run in degradation.result.runs}
    for view in (lab.lesion, lab.landscape):
        view.resnet_field.set_path(runs["resnet20"])
        view.plain_field.set_path(runs["plain20"])
    lab.lesion.images_spin.setValue(1000)
    assert lab.lesion.start(), lab.lesion.bar.status.text()
    wait_for(app, lab.lesion)
    grab(window, lab.lesion, out / "lab-lesion.png")

    lab.landscape.grid_spin.setValue(11)
    lab.landscape.images_spin.setValue(500)
    assert lab.landscape.start(), lab.landscape.bar.status.text()
    wait_for(app, lab.landscape)
    grab(window, lab.landscape, out / "lab-landscape.png")
    window.files.maybe_save = lambda: True
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
