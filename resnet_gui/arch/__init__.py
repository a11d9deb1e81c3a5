"""What an architecture is: data, presets, JSON and validation (standard library only)."""

from resnet_gui.errors import ArchitectureError
from resnet_gui.arch.model import (
    BLOCK_DESCRIPTIONS,
    BLOCK_EXPANSION,
    BLOCK_KINDS,
    POOL_KINDS,
    SHORTCUT_DESCRIPTIONS,
    SHORTCUT_KINDS,
    STEM_DESCRIPTIONS,
    STEM_KINDS,
    Architecture,
    Head,
    Shortcut,
    Stage,
    Stem,
    stage_in_channels,
    validate,
)
from resnet_gui.arch.presets import PRESETS, build_preset, get_preset, preset_names
from resnet_gui.arch.resolve import locate_architecture, resolve_architecture
from resnet_gui.arch.serialize import dumps, from_dict, load_file, loads, save_file, to_dict
from resnet_gui.arch.twin import is_plain, plain_twin, residual_twin

__all__ = [
    "BLOCK_DESCRIPTIONS", "BLOCK_EXPANSION", "BLOCK_KINDS", "POOL_KINDS", "SHORTCUT_DESCRIPTIONS",
    "SHORTCUT_KINDS", "STEM_DESCRIPTIONS", "STEM_KINDS", "Architecture", "ArchitectureError",
    "Head", "PRESETS", "Shortcut", "Stage", "Stem", "build_preset", "dumps", "from_dict",
    "get_preset", "is_plain", "load_file", "loads", "locate_architecture", "plain_twin",
    "preset_names", "residual_twin", "resolve_architecture", "save_file", "stage_in_channels",
    "to_dict", "validate",
]
