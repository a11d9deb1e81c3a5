"""Pure edits of an architecture: each returns a new, valid architecture (or refuses with a
sentence naming what is wrong) and leaves the original untouched."""

import pytest

from resnet_gui.errors import ArchitectureError
from resnet_gui.arch import edits
from resnet_gui.arch.edits import Part
from resnet_gui.arch.model import Shortcut, validate
from resnet_gui.arch.presets import build_preset


@pytest.fixture
def arch():
    return build_preset("d2l-resnet18")


def widths(arch):
    return [stage.width for stage in arch.stages]


def test_insert_stage_at_end_doubles_width_and_halves_resolution(arch):
    result = edits.insert_stage(arch, 4)
    assert widths(result) == [64, 128, 256, 512, 1024]
    assert result.stages[4].stride == 2 and result.stages[4].block == "basic"
    assert result.stages[4].shortcut == arch.stages[3].shortcut
    assert widths(arch) == [64, 128, 256, 512]  # the original is untouched
    validate(result)


def test_insert_stage_in_the_middle_keeps_the_shapes_after_it(arch):
    result = edits.insert_stage(arch, 2, block="bottleneck")
    assert widths(result) == [64, 128, 128, 256, 512]
    assert result.stages[2].blocks == ("bottleneck", "bottleneck")
    assert result.stages[2].stride == 1


def test_insert_stage_refuses_an_unknown_block_kind(arch):
    with pytest.raises(ArchitectureError, match="unknown block kind 'resnext'"):
        edits.insert_stage(arch, 0, block="resnext")


def test_move_stage_reorders(arch):
    result = edits.move_stage(arch, 3, 0)
    assert widths(result) == [512, 64, 128, 256]
    assert widths(edits.move_stage(arch, 0, 3)) == [128, 256, 512, 64]


def test_remove_the_only_stage_is_refused_with_a_reason(arch):
    single = arch.replace(stages=arch.stages[:1])
    with pytest.raises(ArchitectureError, match="at least one stage"):
        edits.remove_stage(single, 0)
    assert widths(edits.remove_stage(arch, 1)) == [64, 256, 512]


def test_duplicate_stage_keeps_the_resolution(arch):
    result = edits.duplicate_stage(arch, 1)
    assert widths(result) == [64, 128, 128, 256, 512]
    assert result.stages[2].stride == 1 and result.stages[1].stride == 2


def test_morph_stage_changes_every_block_and_keeps_the_count(arch):
    result = edits.morph_stage(arch, 2, "preact-bottleneck")
    assert result.stages[2].blocks == ("preact-bottleneck",) * 2
    assert result.stages[2].out_channels == 1024
    assert result.stages[1] == arch.stages[1]


def test_set_stage_fields_and_count(arch):
    result = edits.set_stage(arch, 0, width=32, num_blocks=4, shortcut_kind="zero-pad",
                             stride=2, conv_bias=False)
    stage = result.stages[0]
    assert (stage.width, stage.num_blocks, stage.stride, stage.conv_bias) == (32, 4, 2, False)
    assert stage.shortcut == Shortcut(kind="zero-pad", batch_norm=False, bias=True)
    assert edits.set_stage(result, 0, num_blocks=1).stages[0].blocks == ("basic",)
    with pytest.raises(ArchitectureError, match="has no field 'depth'"):
        edits.set_stage(arch, 0, depth=3)
    with pytest.raises(ArchitectureError, match="at least 1"):
        edits.set_stage(arch, 0, num_blocks=0)


def test_insert_and_remove_blocks(arch):
    result = edits.insert_block(arch, 1, 1, "bottleneck")
    assert result.stages[1].blocks == ("basic", "bottleneck", "basic")
    assert edits.remove_blocks(result, 1, 0, 2).stages[1].blocks == ("basic",)
    # Removing every block of a stage removes the stage.
    assert len(edits.remove_blocks(arch, 1, 0, 2).stages) == 3
    with pytest.raises(ArchitectureError, match="no block 5 in layer2"):
        edits.remove_blocks(arch, 1, 5)


def test_move_block_between_stages(arch):
    result, where = edits.move_block(arch, 0, 1, 2, 0)
    assert [s.num_blocks for s in result.stages] == [1, 2, 3, 2]
    assert where == Part.blocks(2, 0)
    validate(result)


def test_move_block_within_a_stage_counts_positions_before_the_move(arch):
    mixed = edits.insert_block(arch, 0, 2, "bottleneck")  # basic, basic, bottleneck
    result, where = edits.move_block(mixed, 0, 2, 0, 0)
    assert result.stages[0].blocks == ("bottleneck", "basic", "basic")
    assert where == Part.blocks(0, 0)
    result, where = edits.move_block(mixed, 0, 0, 0, 3)
    assert result.stages[0].blocks == ("basic", "bottleneck", "basic")
    assert where == Part.blocks(0, 2)


def test_moving_the_last_block_out_removes_its_stage(arch):
    lonely = edits.set_stage(arch, 0, num_blocks=1)
    result, where = edits.move_block(lonely, 0, 0, 2, 1)
    assert [s.num_blocks for s in result.stages] == [2, 3, 2]
    assert where == Part.blocks(1, 1)  # the target stage moved up by one


def test_stem_head_and_input(arch):
    assert edits.set_stem(arch, kernel=3, max_pool=False).stem.kernel == 3
    deep = edits.replace_stem(arch, "deep")
    assert deep.stem.kind == "deep" and deep.stem.width == arch.stem.width
    assert edits.set_head(arch, pool="avg", dropout=0.5).head.dropout == 0.5
    with pytest.raises(ArchitectureError, match="unknown pooling kind"):
        edits.set_head(arch, pool="median")
    result = edits.set_input(arch, in_channels=3, num_classes=100, input_size=64)
    assert (result.in_channels, result.num_classes, result.input_size) == (3, 100, (64, 64))
    assert {s.shortcut.kind for s in edits.set_all_shortcuts(arch, "zero-pad").stages} == {
        "zero-pad"
    }


def test_delete_and_duplicate_parts(arch):
    result, selected = edits.delete_part(arch, Part.stage(3))
    assert len(result.stages) == 3 and selected == Part.stage(2)
    result, selected = edits.delete_part(arch, Part.blocks(1, 1))
    assert result.stages[1].num_blocks == 1 and selected == Part.blocks(1, 0)
    with pytest.raises(ArchitectureError, match="stem cannot be removed"):
        edits.delete_part(arch, Part.stem())
    result, selected = edits.duplicate_part(arch, Part.blocks(1, 0))
    assert result.stages[1].num_blocks == 3 and selected == Part.blocks(1, 1)
    result, selected = edits.duplicate_part(arch, Part.blocks(1, 0, 2))
    assert result.stages[1].num_blocks == 3 and selected == Part.blocks(1, 0, 3)


def test_error_paths_point_at_parts(arch):
    assert edits.part_for_path("stages[2].width", arch) == Part.stage(2)
    assert edits.part_for_path("stages[1].blocks[1]", arch) == Part.blocks(1, 1)
    assert edits.part_for_path("layer4.1.conv2", arch) == Part.blocks(3, 1)
    assert edits.part_for_path("layer3", arch) == Part.stage(2)
    assert edits.part_for_path("maxpool", arch) == Part.stem()
    assert edits.part_for_path("fc", arch) == Part.head()
    assert edits.part_for_path("layer9.0", arch) is None


def test_parts_know_their_layer_rows():
    assert Part.blocks(1, 0, 2).contains_layer("layer2.1.conv1")
    assert not Part.blocks(1, 0, 2).contains_layer("layer2.2.conv1")
    assert Part.stage(0).contains_layer("layer1.0")
    assert Part.stem().contains_layer("bn1") and not Part.stem().contains_layer("fc")
    assert Part.head().contains_layer("fc")


def test_block_shortcuts_are_identity_only_where_shapes_match():
    arch = build_preset("resnet50")
    assert edits.block_shortcut(arch, 0, 0) == "projection"  # 64 -> 256 channels
    assert edits.block_shortcut(arch, 0, 1) == "identity"
    assert edits.block_shortcut(arch, 1, 0) == "projection"  # stride 2
    plain = edits.morph_stage(arch, 2, "plain-bottleneck")
    assert edits.block_shortcut(plain, 2, 0) is None
    cifar = build_preset("resnet20")
    assert edits.block_shortcut(cifar, 1, 0) == "zero-pad"
    assert edits.block_shortcut(cifar, 0, 0) == "identity"


def test_identical_blocks_fold_into_runs():
    arch = build_preset("resnet152")
    assert edits.fold_groups(arch, 2) == [(0, 1), (1, 35)]
    assert edits.fold_groups(build_preset("resnet18"), 0) == [(0, 2)]
    mixed = edits.insert_block(arch, 0, 2, "basic")  # bottleneck, bottleneck, basic, ...
    assert edits.fold_groups(mixed, 0) == [(0, 1), (1, 1), (2, 1), (3, 1)]


def test_set_blocks_kind_changes_a_run(arch):
    result = edits.set_blocks_kind(arch, 3, 0, 2, "preact-basic")
    assert result.stages[3].blocks == ("preact-basic", "preact-basic")
    assert result.final_preactivation
