"""Both paths of a residual block, seen from outside it: y = act(F(x) + s(x)).

:class:`BlockWatch` puts forward hooks on each block (its input and output), on the branch's
last module (F(x)) and on the shortcut's module (s(x) after projection; the block's input
where the shortcut is the identity), and hands every call's four tensors to a function. The
hooks exist only while the watch is armed, so a network that is not watched runs at full
speed. Hooks do not run inside a replayed CUDA graph or a compiled forward: a watched call
must run the plain module (see :mod:`resnet_gui.engine.telemetry`).

:func:`block_decomposition` uses it for the Inspect view: the shortcut, the branch, their sum
and the block's output for one image, as numpy arrays with their norms.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from resnet_gui.engine.events import BlockDecomposition
from resnet_gui.engine.inspect import eval_mode, named_layer, unwrap_compiled
from resnet_gui.engine.model import ResidualBlock
from resnet_gui.errors import UserError


@dataclass(frozen=True)
class BlockCall:
    """One call of a block: its input x, the shortcut's output s(x) (None in a plain block),
    the branch's output F(x), and the block's output y."""

    input: torch.Tensor
    shortcut: torch.Tensor | None
    branch: torch.Tensor
    output: torch.Tensor


def residual_blocks(model: nn.Module) -> list[tuple[str, ResidualBlock]]:
    """Every block of the network, named as in the layer table (``layer1.0``), in order."""
    return [(name, module) for name, module in unwrap_compiled(model).named_modules()
            if isinstance(module, ResidualBlock)]


class BlockWatch:
    """Forward hooks on ``blocks`` calling ``seen(name, call)`` after each block's forward,
    while armed. ``training_only`` ignores calls in eval mode or under ``no_grad``
    (evaluation, probes, Grad-CAM), so an armed watch sees only training forwards."""

    def __init__(self, blocks: list[tuple[str, ResidualBlock]],
                 seen: Callable[[str, BlockCall], None], training_only: bool = False) -> None:
        self.blocks, self.seen, self.training_only = blocks, seen, training_only
        self._handles: list[torch.utils.hooks.RemovableHandle] = []
        self._parts: dict[str, dict[str, torch.Tensor]] = {}

    @property
    def armed(self) -> bool:
        return bool(self._handles)

    def arm(self) -> None:
        if self.armed:
            return
        for name, block in self.blocks:
            parts = self._parts.setdefault(name, {})
            self._handles.append(block.register_forward_pre_hook(
                self._keep(block, parts, "input")))
            self._handles.append(block.branch_end_module().register_forward_hook(
                self._keep(block, parts, "branch")))
            if block.downsample is not None:
                self._handles.append(block.downsample.register_forward_hook(
                    self._keep(block, parts, "shortcut")))
            self._handles.append(block.register_forward_hook(self._report(name, block, parts)))

    def disarm(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self._parts.clear()

    def __enter__(self) -> BlockWatch:
        self.arm()
        return self

    def __exit__(self, *exc) -> None:
        self.disarm()

    def _wanted(self, module: nn.Module) -> bool:
        return not self.training_only or (module.training and torch.is_grad_enabled())

    def _keep(self, block: ResidualBlock, parts: dict[str, torch.Tensor], key: str):
        # The block's mode decides for all its parts: a frozen (fine-tuned) block keeps its
        # batch norms in eval mode while the block itself trains.
        def hook(module: nn.Module, args, output=None) -> None:
            if self._wanted(block):
                parts[key] = args[0] if key == "input" else output
        return hook

    def _report(self, name: str, block: ResidualBlock, parts: dict[str, torch.Tensor]):
        def hook(module: nn.Module, _args, output: torch.Tensor) -> None:
            if not self._wanted(module):
                return
            shortcut = None
            if block.has_shortcut:
                shortcut = parts["input"] if block.downsample is None else parts["shortcut"]
            call = BlockCall(parts["input"], shortcut, parts["branch"], output)
            parts.clear()  # the watch holds no activation past the block's call
            self.seen(name, call)
        return hook


def _norm(array: np.ndarray) -> float:
    return float(np.linalg.norm(array.astype(np.float64).ravel()))


def block_decomposition(model: nn.Module, image: torch.Tensor, block: str
                        ) -> BlockDecomposition:
    """Block ``block``'s shortcut s(x) (after projection), branch F(x), their sum and its
    output, for one prepared image (1, C, H, W), in eval mode under ``no_grad``.

    Switches ``model`` to eval mode for the call and back: pass an idle network, or call it
    from the thread training it (between steps, as the epoch-end probe does).
    """
    model = unwrap_compiled(model)
    module = named_layer(model, block)
    if not isinstance(module, ResidualBlock):
        raise UserError(f"{block} is not a residual block; pick a block such as layer1.0")
    if not module.has_shortcut:
        raise UserError(f"{block} is a plain block: it has no shortcut, so there is no "
                        "x + F(x) to show; pick a residual block")
    maps: list[np.ndarray] = []

    def seen(_name: str, call: BlockCall) -> None:
        # Copied at once: a later in-place layer could write over the block's output.
        maps.extend(tensor[0].float().cpu().numpy() for tensor in
                    (call.shortcut, call.branch, call.shortcut + call.branch, call.output))

    parameter = next(model.parameters(), None)
    if parameter is not None:
        image = image.to(parameter.device)
    with torch.no_grad(), eval_mode(model), BlockWatch([(block, module)], seen):
        logits = model(image)
    return BlockDecomposition(
        block=block, kind=module.kind, projected=module.downsample is not None,
        shortcut=maps[0], branch=maps[1], sum=maps[2], output=maps[3],
        norms=tuple(_norm(array) for array in maps), predicted=int(logits.argmax(dim=1)[0]))
