"""Live per-block telemetry: what each residual block adds, every N training steps.

For each block, on a sampled step: ||F(x)|| / ||s(x)|| (the branch against the shortcut, after
projection where there is one), cos(F(x), s(x)), the gradient norm of the block's parameters
and their norm. Jastrzebski et al. (2018) find the ratio large in early blocks and small in
late ones: blocks refine an estimate.

How a sample is taken (:class:`BlockTelemetry`, a step hook of the
:class:`~resnet_gui.engine.loop.TrainingLoop`):
- after step s-1, when s is due (s % every == 0), the hooks of a
  :class:`~resnet_gui.engine.blocks.BlockWatch` are armed and the loop is asked to run step s
  eagerly (``loop.eager_step``): module hooks do not run inside a replayed CUDA graph or a
  torch.compile'd forward, so a sampled step runs the plain module (the same arithmetic);
- during step s's forward each block's hook reduces its tensors to three numbers, kept on the
  device (no synchronisation); forwards in eval mode or under ``no_grad`` (evaluation,
  probes, Grad-CAM at an epoch end) are ignored;
- after step s, with its gradients still in place, the gradient norms join them, the hooks
  are removed, and one read to the host makes a :class:`TelemetryEvent`.
Steps that are not sampled run with no hook at all. The label ``step`` is the number of
optimizer steps taken before the sampled one: the weights the sample describes.

:class:`TelemetryHistory` keeps the samples for the checkpoint and the run store, bounded by
thinning: beyond ``HISTORY_LIMIT`` samples every other one goes and the spacing doubles, so
the history stays evenly spaced over the whole run.
"""

from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from resnet_gui.arch.numbers import finite_or_none
from resnet_gui.arch.recipe import clips_gradients
from resnet_gui.engine.blocks import BlockCall, BlockWatch, residual_blocks
from resnet_gui.engine.events import BlockStats, TelemetryEvent

if TYPE_CHECKING:
    from resnet_gui.engine.loop import TrainingLoop

METRICS = ("residual_ratio", "cosine", "grad_norm", "weight_norm")
# benchmarks/bench_telemetry.py on the CPU: a sample costs 0.1-0.2 of a step (resnet20,
# d2l-resnet18), so every 7 steps would stay within 3 %; 50 leaves room for a GPU, where a
# sampled step runs eagerly instead of replaying the CUDA graph.
DEFAULT_EVERY = 50
HISTORY_LIMIT = 4000  # samples kept in a checkpoint or a stored run before thinning


def total_norm(tensors: list[torch.Tensor]) -> torch.Tensor:
    """The L2 norm of all ``tensors`` together, as a float32 tensor on their device (NaN for
    none); one fused kernel per device, as ``clip_grad_norm_`` computes it."""
    if not tensors:
        return torch.tensor(math.nan)
    norms = torch._foreach_norm([t.detach() for t in tensors])
    return torch.linalg.vector_norm(torch.stack(norms).float())


def compare(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """||a|| / ||b|| and cos(a, b) over whole tensors, as float32 tensors; cos is 0 where
    either is zero, and both are NaN where the shapes differ. Reductions accumulate in
    float32 straight from the tensors' own precision: no float copy of an activation."""
    if a.shape != b.shape:
        nan = torch.tensor(math.nan, device=a.device)
        return nan, nan
    a, b = a.detach(), b.detach()
    norm_a = torch.linalg.vector_norm(a, dtype=torch.float32)
    norm_b = torch.linalg.vector_norm(b, dtype=torch.float32)
    dot = torch.sum(a * b, dtype=torch.float32)
    cosine = dot / (norm_a * norm_b).clamp_min(torch.finfo(torch.float32).tiny)
    return norm_a / norm_b, cosine


def block_measures(call: BlockCall) -> tuple[torch.Tensor, torch.Tensor]:
    """(ratio, cosine) of one block call: the branch against the shortcut, or, in a plain
    block, the output against the input."""
    if call.shortcut is not None:
        return compare(call.branch, call.shortcut)
    return compare(call.output, call.input)


def _json_number(value: float) -> float | None:
    value = finite_or_none(value)
    return None if value is None else float(f"{value:.9g}")  # round-trips a float32


class TelemetryHistory:
    """Telemetry samples of a run, evenly spaced and at most ``limit`` of them."""

    def __init__(self, blocks: tuple[str, ...] = (), limit: int = HISTORY_LIMIT) -> None:
        self.blocks = tuple(blocks)
        self.limit = limit
        self.spacing = 1  # fewest steps between two kept samples; doubles at each thinning
        self.steps: list[int] = []
        self.progress: list[float] = []
        self.values: list[np.ndarray] = []  # one (blocks, len(METRICS)) float32 per sample

    def __len__(self) -> int:
        return len(self.steps)

    def add(self, event: TelemetryEvent) -> bool:
        """Keep ``event`` unless it comes sooner than ``spacing`` after the last sample (or
        is of other blocks); True when kept."""
        names = tuple(block.name for block in event.blocks)
        if not self.blocks:
            self.blocks = names
        if names != self.blocks or (self.steps and event.step < self.steps[-1] + self.spacing):
            return False
        self.steps.append(int(event.step))
        self.progress.append(float(event.epoch_progress))
        self.values.append(np.array([[getattr(block, metric) for metric in METRICS]
                                     for block in event.blocks], dtype=np.float32))
        if len(self.steps) > self.limit:
            self.thin()
        return True

    def thin(self) -> None:
        """Drop every other sample (the first stays) and widen the spacing to match."""
        self.steps, self.progress, self.values = (
            column[::2] for column in (self.steps, self.progress, self.values))
        gaps = np.diff(self.steps)
        self.spacing = max(self.spacing, int(gaps.min()) if gaps.size else 1)

    def metric(self, name: str) -> np.ndarray:
        """One metric as a (samples, blocks) float32 array, for a heatmap over time."""
        column = METRICS.index(name)
        if not self.values:
            return np.zeros((0, len(self.blocks)), np.float32)
        return np.stack(self.values)[:, :, column]

    def events(self) -> Iterator[TelemetryEvent]:
        for step, progress, values in zip(self.steps, self.progress, self.values):
            yield TelemetryEvent(step, progress, tuple(
                BlockStats(name, *(float(v) for v in row)) for name, row in zip(self.blocks,
                                                                               values)))

    # -- storage ----------------------------------------------------------------------------

    def to_checkpoint(self) -> dict[str, Any]:
        """Tensors and plain values, loadable with ``torch.load(weights_only=True)``."""
        values = (np.stack(self.values) if self.values
                  else np.zeros((0, len(self.blocks), len(METRICS)), np.float32))
        return {"blocks": list(self.blocks), "spacing": self.spacing,
                "steps": torch.tensor(self.steps, dtype=torch.int64),
                "progress": torch.tensor(self.progress, dtype=torch.float64),
                "values": torch.from_numpy(values)}

    @classmethod
    def from_checkpoint(cls, saved: Any, max_step: int) -> TelemetryHistory:
        """The saved history, every field checked; ``ValueError`` when it is damaged. None
        (a checkpoint from before telemetry) is an empty history."""
        history = cls()
        if saved is None:
            return history
        blocks, steps, values = saved["blocks"], saved["steps"], saved["values"]
        if not (isinstance(blocks, list) and all(isinstance(b, str) for b in blocks)):
            raise ValueError("telemetry block names are not a list of names")
        count = len(steps)
        if not (isinstance(values, torch.Tensor)
                and tuple(values.shape) == (count, len(blocks), len(METRICS))
                and count <= history.limit):
            raise ValueError("telemetry values do not match its steps and blocks")
        steps = [int(step) for step in steps.tolist()]
        progress = [float(value) for value in saved["progress"].tolist()]
        if len(progress) != count or any(not 0 <= s <= max_step for s in steps) \
                or any(b <= a for a, b in itertools.pairwise(steps)) \
                or not all(math.isfinite(p) and p >= 0 for p in progress):
            raise ValueError("telemetry steps are out of order or out of range")
        spacing = saved["spacing"]
        if isinstance(spacing, bool) or not isinstance(spacing, int) or spacing < 1:
            raise ValueError("telemetry spacing is not a positive whole number")
        history.blocks, history.spacing = tuple(blocks), spacing
        history.steps, history.progress = steps, progress
        history.values = list(values.float().numpy())
        return history

    def to_json(self) -> dict[str, Any]:
        """Columns of plain numbers (None where not finite), for the run store."""
        document: dict[str, Any] = {"blocks": list(self.blocks), "spacing": self.spacing,
                                    "step": list(self.steps),
                                    "epoch_progress": list(self.progress)}
        for column, metric in enumerate(METRICS):  # 9 digits, not a float64 repr
            document[metric] = [[_json_number(v) for v in values[:, column].tolist()]
                                for values in self.values]
        return document

    @classmethod
    def from_json(cls, document: Any) -> TelemetryHistory:
        """What :meth:`to_json` wrote; an empty history where the document is unreadable
        (a run's curves still show without it)."""
        try:
            saved = {"blocks": list(document["blocks"]), "spacing": document["spacing"],
                     "steps": torch.tensor(document["step"], dtype=torch.int64),
                     "progress": torch.tensor(document["epoch_progress"], dtype=torch.float64)}
            columns = [np.array(document[m], dtype=np.float32).reshape(
                len(document["step"]), len(saved["blocks"])) for m in METRICS]
            saved["values"] = torch.from_numpy(np.stack(columns, axis=-1))
            return cls.from_checkpoint(saved, max_step=2 ** 62)
        except (KeyError, TypeError, ValueError, IndexError, RuntimeError):
            return cls()


class BlockTelemetry:
    """Samples the blocks of ``loop``'s network every ``every`` steps (see the module
    docstring), adds each sample to ``loop.state.telemetry`` and emits it as
    ``on_telemetry``."""

    def __init__(self, loop: TrainingLoop, every: int) -> None:
        self.loop, self.every = loop, every
        self.blocks = residual_blocks(loop.model)
        self.parameters = {name: list(block.parameters()) for name, block in self.blocks}
        self.watch = BlockWatch(self.blocks, self._seen, training_only=True)
        self._measured: dict[str, torch.Tensor] = {}
        self._sampling: tuple[int, float, float] | None = None  # step, progress, grad scale

    @classmethod
    @contextlib.contextmanager
    def attached(cls, loop: TrainingLoop, every: int) -> Iterator[BlockTelemetry | None]:
        """Telemetry on ``loop`` for the ``with`` block (none when ``every`` is 0 or the
        network has no blocks); its hooks are gone afterwards, however the run ended."""
        telemetry = cls(loop, every) if every > 0 else None
        if telemetry is None or not telemetry.blocks:
            yield None
            return
        loop.step_hooks.append(telemetry.after_step)
        telemetry._arm_if_due()
        try:
            yield telemetry
        finally:
            telemetry.close()

    def close(self) -> None:
        self.watch.disarm()
        self.loop.eager_step = False
        self._sampling = None
        if self.after_step in self.loop.step_hooks:
            self.loop.step_hooks.remove(self.after_step)

    def after_step(self, loop: TrainingLoop) -> None:
        if self._sampling is not None:
            self._finish()
        self._arm_if_due()

    def _arm_if_due(self) -> None:
        loop, state = self.loop, self.loop.state
        if state.step % self.every:
            return
        progress = state.epoch + state.position / max(loop.num_train, 1)
        # Gradients stay multiplied by the loss scale unless clipping unscaled them.
        scale = 1.0 if clips_gradients(loop.recipe) else loop.scaler.get_scale()
        self._sampling = (state.step, progress, scale)
        self._measured.clear()
        self.watch.arm()
        loop.eager_step = True

    def _seen(self, name: str, call: BlockCall) -> None:
        with torch.no_grad():
            ratio, cosine = block_measures(call)
            weight = total_norm(self.parameters[name]).to(ratio.device)
            self._measured[name] = torch.stack([ratio, cosine, weight])

    def _finish(self) -> None:
        step, progress, scale = self._sampling
        self._sampling = None
        self.watch.disarm()
        self.loop.eager_step = False
        device = self.parameters[self.blocks[0][0]][0].device
        rows = []
        with torch.no_grad():
            for name, _ in self.blocks:
                grads = [p.grad for p in self.parameters[name] if p.grad is not None]
                # A block that did not run has no measures (never so in a ResNet).
                measured = self._measured.get(name, torch.full((3,), math.nan, device=device))
                grad = total_norm(grads).to(device) / scale
                rows.append(torch.cat([measured[:2], grad[None], measured[2:]]))
            values = torch.stack(rows).cpu().tolist()  # the sample's one read from the device
        self._measured.clear()
        event = TelemetryEvent(step=step, epoch_progress=progress, blocks=tuple(
            BlockStats(name, *row) for (name, _), row in zip(self.blocks, values)))
        self.loop.state.telemetry.add(event)
        self.loop.trainer.emit("on_telemetry", event)
