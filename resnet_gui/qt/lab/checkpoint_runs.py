"""Running an engine experiment on one or two checkpoints (a ResNet and its plain twin) in
the helper thread, each progress report tagged with the checkpoint it belongs to."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def on_checkpoints(paths: list[str], images: int, measure: Callable[..., Any]):
    """An experiment for :class:`ExperimentWorker`: for each path, load the checkpoint and
    ``images`` of its test images, then ``measure(trained, evalset, progress, stop)``.
    Progress arrives as ``(index, Progress)``; the result is the list of results (fewer
    when cancelled)."""

    def experiment(progress, stop) -> list[Any]:
        from resnet_gui.engine.lab.common import prepare_checkpoint

        results = []
        for index, path in enumerate(paths):
            if stop.is_set():
                break
            trained, evalset = prepare_checkpoint(path, images=images)
            results.append(measure(trained, evalset,
                                   lambda report, i=index: progress((i, report)), stop))
        return results

    return experiment
