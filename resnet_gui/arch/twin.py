"""The plain twin of an architecture: the same layers with every shortcut removed.

He et al.'s plain networks (2015, section 3.4 and Fig. 3) are their residual networks without
shortcut connections, not even the projections where the shape changes. The twin therefore
has exactly the residual network's parameters minus those of its projection shortcuts.
Standard library only.
"""

from __future__ import annotations

import re
from dataclasses import replace

from resnet_gui.arch.model import Architecture, validate
from resnet_gui.errors import ArchitectureError

# Residual block kind -> the kind with the same layers and no shortcut.
PLAIN_KIND: dict[str, str] = {
    "basic": "plain",
    "bottleneck": "plain-bottleneck",
    "plain": "plain",
    "plain-bottleneck": "plain-bottleneck",
}
RESIDUAL_KIND: dict[str, str] = {"plain": "basic", "plain-bottleneck": "bottleneck"}


def is_plain(arch: Architecture) -> bool:
    """True when no block of ``arch`` has a shortcut."""
    return all(kind in RESIDUAL_KIND for stage in arch.stages for kind in stage.blocks)


def twin_name(name: str, plain: bool) -> str:
    """``resnet56`` <-> ``plain56``, ``d2l-resnet18`` -> ``d2l-plain18``; other names get a
    ``-plain`` suffix (and lose it again)."""
    if plain:
        if re.search("resnet", name, flags=re.IGNORECASE):
            return re.sub("resnet", "plain", name, count=1, flags=re.IGNORECASE)
        return f"{name}-plain"
    if name.endswith("-plain"):
        return name[: -len("-plain")]
    return re.sub("plain", "resnet", name, count=1, flags=re.IGNORECASE)


def plain_twin(arch: Architecture) -> Architecture:
    """``arch`` with every residual block replaced by its plain kind (no shortcut at all).

    The stages keep their shortcut setting, unused by plain blocks, so that
    :func:`residual_twin` gives the original network back. Pre-activation blocks have no
    plain kind in resnet-gui (their layers only make sense around an identity path).
    """
    preact = sorted({kind for stage in arch.stages for kind in stage.blocks
                     if kind not in PLAIN_KIND})
    if preact:
        raise ArchitectureError(
            f"{arch.name} has {', '.join(preact)} blocks, which have no plain twin; use a "
            "network of basic or bottleneck blocks (resnet20, resnet18, resnet50, ...)")
    stages = tuple(replace(stage, blocks=tuple(PLAIN_KIND[k] for k in stage.blocks))
                   for stage in arch.stages)
    return validate(arch.replace(stages=stages, name=twin_name(arch.name, plain=True)))


def residual_twin(arch: Architecture) -> Architecture:
    """The inverse of :func:`plain_twin`: plain blocks become residual ones again."""
    stages = tuple(replace(stage, blocks=tuple(RESIDUAL_KIND.get(k, k) for k in stage.blocks))
                   for stage in arch.stages)
    return validate(arch.replace(stages=stages, name=twin_name(arch.name, plain=False)))
