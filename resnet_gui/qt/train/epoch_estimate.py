"""The estimated time per epoch, before Start: the engine's short probe
(:func:`resnet_gui.engine.estimate.estimate_epoch`) on a helper thread, debounced while the
settings or the architecture change, and never started while a run is live.

A probe times the network per image, so a new subset or test-set size only rescales the last
probe of the same network, batch and device: it is measured again only when those change.
"""

from __future__ import annotations

import dataclasses
import threading
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from resnet_gui.arch.model import Architecture
from resnet_gui.arch.recipe import Recipe, plan_for_budget
from resnet_gui.errors import UserError

DEBOUNCE_MS = 700  # a spin box being stepped is one estimate, once it rests
# A probe that other work disturbed (the window opening: its imports and first analysis) is
# measured again after a pause, at most this often, and the fastest measurement counts.
REPROBE_MS = 1500
MAX_REPROBES = 3
# A disturbed probe can only have made the epoch look longer: under a minute, it stands.
REPROBE_OVER_SECONDS = 60.0


def _engine_estimate(arch: Architecture, recipe: Recipe, num_train: int, num_test: int) -> Any:
    from resnet_gui.engine.estimate import estimate_epoch

    return estimate_epoch(arch, recipe, num_train, num_test)


def _eval_share() -> float:
    from resnet_gui.engine.estimate import EVAL_SHARE

    return EVAL_SHARE


class EpochEstimator(QObject):
    """``request()`` the estimate of a run; ``estimated(estimate, problem)`` brings it (one
    of the two is None: the estimate, or the sentence that says why there is none)."""

    estimated = Signal(object, object)  # EpochEstimate | None, str | None
    measuring = Signal()  # a new probe is due: the last estimate no longer holds
    _measured = Signal(int, object, object, object)  # generation, probe key, estimate, problem

    def __init__(self, parent: QObject | None = None,
                 estimate: Callable[..., Any] | None = None) -> None:
        super().__init__(parent)
        self.estimate = estimate or _engine_estimate
        self.probes = 0  # probes started (tests)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(DEBOUNCE_MS)
        self._timer.timeout.connect(self._launch)
        self._wanted: tuple | None = None  # (arch, recipe, num_train, num_test)
        self._generation = 0
        self._thread: threading.Thread | None = None
        self._cache: dict[tuple, Any] = {}  # probe key -> the fastest estimate measured
        self._reprobes: dict[tuple, int] = {}  # probe key -> disturbed probes measured again
        self._measured.connect(self._on_measured)

    @property
    def busy(self) -> bool:
        return self._timer.isActive() or (self._thread is not None and self._thread.is_alive())

    def request(self, arch: Architecture, recipe: Recipe, num_train: int, num_test: int) -> None:
        """Estimate this run once the settings rest (at once when only the counts changed)."""
        self._generation += 1
        self._wanted = (arch, recipe, num_train, num_test)
        key = self._probe_key(arch, recipe, num_train)
        cached = self._cache.get(key)
        if cached is not None and not self._worth_measuring_again(key, cached):
            self._timer.stop()
            self._wanted = None
            self.estimated.emit(self._rescaled(cached, num_train, num_test), None)
            return
        self._timer.start(DEBOUNCE_MS)
        self.measuring.emit()

    def cancel(self) -> None:
        """Forget what was asked (a run starts): nothing starts, a result in flight is dropped."""
        self._generation += 1
        self._wanted = None
        self._timer.stop()

    def wait(self, timeout: float = 30.0) -> None:
        """Let a probe in flight end (closing, tests)."""
        if self._thread is not None:
            self._thread.join(timeout)

    @staticmethod
    def _probe_key(arch: Architecture, recipe: Recipe, num_train: int) -> tuple:
        batch = plan_for_budget(recipe, num_train).batch_size
        return (arch, recipe.device, recipe.precision, recipe.channels_last, batch)

    @staticmethod
    def _rescaled(estimate: Any, num_train: int, num_test: int) -> Any:
        seconds = estimate.seconds_per_image * (num_train + _eval_share() * num_test)
        return dataclasses.replace(estimate, seconds=seconds)

    @Slot()
    def _launch(self) -> None:
        if self._wanted is None or (self._thread is not None and self._thread.is_alive()):
            return  # nothing asked, or one probe at a time: the next starts when it ends
        wanted, generation = self._wanted, self._generation
        self._wanted = None
        arch, recipe, num_train, _num_test = wanted
        key = self._probe_key(arch, recipe, num_train)

        def report(estimate: Any, problem: str | None) -> None:
            try:
                self._measured.emit(generation, (key, wanted), estimate, problem)
            except RuntimeError:  # the window closed while the probe ran: nobody to tell
                pass

        def measure() -> None:
            try:
                estimate = self.estimate(*wanted)
            except UserError as problem:
                report(None, str(problem))
            except Exception as bug:  # never let a helper thread take the window down
                traceback.print_exc()
                report(None, f"the estimate failed ({bug})")
            else:
                report(estimate, None)

        self.probes += 1
        self._thread = threading.Thread(target=measure, name="resnet-gui estimate", daemon=True)
        self._thread.start()

    @Slot(int, object, object, object)
    def _on_measured(self, generation: int, asked: tuple, estimate: Any, problem: Any) -> None:
        if self._thread is not None:
            self._thread.join()  # it sent this as its last act: it is ending, if not gone
        key, wanted = asked
        if estimate is not None:
            estimate = self._fastest(key, estimate, wanted)
        if generation != self._generation:
            if self._wanted is not None and not self._timer.isActive():
                self._launch()  # asked again while this one ran
        elif estimate is not None and self._measure_again(key, wanted):
            return  # "Estimating…" stays until an undisturbed probe (or the last try)
        else:
            self.estimated.emit(estimate, problem)

    def _fastest(self, key: tuple, estimate: Any, wanted: tuple) -> Any:
        """The fastest estimate of ``key`` so far (other work only ever slows a probe),
        for the counts of ``wanted``."""
        best = self._cache.get(key)
        if best is None or estimate.seconds_per_image < best.seconds_per_image:
            best = estimate
        self._cache[key] = best
        return self._rescaled(best, wanted[2], wanted[3])

    def _worth_measuring_again(self, key: tuple, estimate: Any) -> bool:
        return (estimate.disturbed and estimate.seconds > REPROBE_OVER_SECONDS
                and self._reprobes.get(key, 0) < MAX_REPROBES)

    def _measure_again(self, key: tuple, wanted: tuple) -> bool:
        if not self._worth_measuring_again(key, self._cache[key]):
            return False
        self._reprobes[key] = self._reprobes.get(key, 0) + 1
        self._wanted = wanted
        self._timer.start(REPROBE_MS)
        return True
