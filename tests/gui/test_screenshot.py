"""``resnet-gui [ARCH] --screenshot FILE.png``: the window rendered offscreen at 1600x1000."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from PySide6.QtGui import QImage

from resnet_gui.qt.app import SCREENSHOT_SIZE, save_screenshot

REPO = Path(__file__).resolve().parent.parent.parent


def distinct_colours(image: QImage, step: int = 7) -> int:
    colours = set()
    for y in range(0, image.height(), step):
        for x in range(0, image.width(), step):
            colours.add(image.pixel(x, y))
    return len(colours)


def assert_not_blank(image: QImage, size: tuple[int, int]) -> None:
    assert not image.isNull()
    assert (image.width(), image.height()) == size
    assert distinct_colours(image) > 60  # text, cards, icons: far from one flat colour


def test_screenshot_of_d2l_resnet18_in_process(make_window, tmp_path):
    window = make_window("d2l-resnet18")
    path = tmp_path / "d2l-resnet18.png"
    save_screenshot(window, path)
    image = QImage(str(path))
    assert_not_blank(image, SCREENSHOT_SIZE)
    # The canvas shows cards, not an empty background.
    canvas = window.canvas
    corner = canvas.mapTo(window, canvas.rect().topLeft())
    region = image.copy(corner.x(), corner.y(), canvas.width(), canvas.height())
    assert distinct_colours(region, step=5) > 30


def test_command_line_screenshot_of_resnet50_at_200_percent(tmp_path):
    path = tmp_path / "resnet50.png"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", QT_SCALE_FACTOR="2")
    done = subprocess.run(
        [sys.executable, "-m", "resnet_gui", "resnet50", "--screenshot", str(path)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    image = QImage(str(path))
    # At 200 % the same 1600x1000 window has twice the pixels each way.
    assert_not_blank(image, (SCREENSHOT_SIZE[0] * 2, SCREENSHOT_SIZE[1] * 2))


def test_a_bad_architecture_name_is_one_line_and_exit_2(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "resnet_gui", "resnet5O", "--screenshot", str(tmp_path / "x.png")],
        cwd=REPO, env=dict(os.environ, QT_QPA_PLATFORM="offscreen"), capture_output=True,
        text=True, timeout=300)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "did you mean 'resnet50'" in done.stderr
    assert not (tmp_path / "x.png").exists()


def test_an_empty_screenshot_name_is_refused_not_a_window_that_never_closes():
    done = subprocess.run(
        [sys.executable, "-m", "resnet_gui", "fmnist-fast", "--screenshot", ""],
        cwd=REPO, env=dict(os.environ, QT_QPA_PLATFORM="offscreen"), capture_output=True,
        text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr == ("resnet-gui: error: --screenshot writes a PNG; name the file .png, "
                           "not ''\n")
