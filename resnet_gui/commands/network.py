"""``resnet-gui presets``, ``resnet-gui summary ARCH`` and ``resnet-gui export ARCH``.

ARCH is a preset name, an architecture JSON file, or a checkpoint written by ``train`` (a
trained network: ``export`` writes it with its weights and preprocessing). Presets and JSON
files are read before torch is imported, so that a mistake there fails at once. Mistakes (a
bad file, an unknown preset, an input too small for the network) raise the project's own
errors, which the entry point prints as one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import os

from resnet_gui.commands.console import say, write_stdout
from resnet_gui.commands.paths import file_to_write, names_standard_output
from resnet_gui.errors import ArchitectureError, UserError
from resnet_gui.files import same_file
from resnet_gui.arch import resolve as arch_resolve
from resnet_gui.arch.model import Architecture, validate
from resnet_gui.arch.presets import PRESETS
from resnet_gui.arch.serialize import dumps

ARCH_HELP = ("a preset name (see 'resnet-gui presets'), an architecture JSON file, or a "
             "checkpoint written by resnet-gui train")
EXPORT_FORMATS = ("json", "py", "onnx", "pt2")


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    presets = subparsers.add_parser(
        "presets", help="list the named architectures",
        description="List the named architectures with a one-line description each.",
    )
    presets.set_defaults(func=run_presets)

    summary = subparsers.add_parser(
        "summary", help="per-layer table: output shapes, parameters, multiply-adds",
        description="Analyse an architecture layer by layer (on the meta device: nothing is "
        "allocated) and print a table, or JSON with --json.",
    )
    summary.add_argument("arch", metavar="ARCH", help=ARCH_HELP)
    _add_shape_options(summary)
    summary.add_argument(
        "--json", action="store_true",
        help="print one JSON object; its layers are the leaf layers, summing to the totals, "
        "each with its receptive_field and jump in input pixels (one number, or [height, "
        "width] where they differ)",
    )
    summary.set_defaults(func=run_summary)

    export = subparsers.add_parser(
        "export", help="write the architecture as JSON, PyTorch code, ONNX or pt2",
        description="Export an architecture or a trained network. json: the architecture "
        "file; py: standalone PyTorch code whose build_model() has resnet-gui's state-dict "
        "keys; onnx and pt2 (torch.export): the network with freshly initialised weights. "
        "From a checkpoint: onnx and pt2 carry the trained weights and the training's "
        "preprocessing (they take the dataset's own uint8 images; class names in the "
        "metadata), py writes NAME.pth beside the code and a load_model().",
    )
    export.add_argument("arch", metavar="ARCH", help=ARCH_HELP)
    export.add_argument("--format", required=True, choices=EXPORT_FORMATS, dest="fmt",
                        help="what to write (onnx needs the onnx and onnxscript packages)")
    export.add_argument("--out", required=True, metavar="FILE",
                        help="file to write; - prints json or py on standard output")
    export.add_argument(
        "--preprocess", action=argparse.BooleanOptionalAction, default=True,
        help="from a checkpoint, onnx and pt2 take uint8 images and resize and normalise "
        "them inside (default); --no-preprocess exports the bare network")
    _add_shape_options(export)
    export.set_defaults(func=run_export)


def _add_shape_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--input", metavar="C,H,W", help="input channels, height and width (default: the "
        "architecture's own, e.g. 3,224,224 for resnet50)",
    )
    parser.add_argument("--classes", metavar="N", help="number of classes")


# -- reading ARCH and the shape options ---------------------------------------------------


def parse_input_shape(text: str) -> tuple[int, int, int]:
    parts = [part.strip() for part in text.replace("x", ",").split(",")]
    try:
        shape = tuple(int(part) for part in parts)
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise ArchitectureError(
            f"must be three positive whole numbers C,H,W (for example 3,224,224), got {text!r}",
            "--input",
        )
    return shape


def parse_classes(text: str) -> int:
    try:
        classes = int(text)
    except ValueError:
        raise ArchitectureError(f"must be a whole number, got {text!r}", "--classes") from None
    if classes < 1:
        raise ArchitectureError(f"must be at least 1, got {classes}", "--classes")
    return classes


def resolve_architecture(
    arch: str, input_shape: tuple[int, int, int] | None = None, classes: int | None = None
) -> Architecture:
    """The architecture ARCH names, with the input shape and classes applied."""
    channels, size = (None, None) if input_shape is None else (input_shape[0], input_shape[1:])
    return arch_resolve.resolve_architecture(arch, in_channels=channels, num_classes=classes,
                                             input_size=size)


def _architecture_from_args(args: argparse.Namespace) -> Architecture:
    input_shape = None if args.input is None else parse_input_shape(args.input)
    classes = None if args.classes is None else parse_classes(args.classes)
    if arch_resolve.is_checkpoint_file(args.arch):
        arch = checkpoint_architecture_at(args.arch)
        channels, size = (None, None) if input_shape is None else (input_shape[0],
                                                                   input_shape[1:])
        changes = {key: value for key, value in (("in_channels", channels),
                                                 ("num_classes", classes),
                                                 ("input_size", size)) if value is not None}
        return validate(arch.replace(**changes)) if changes else arch
    return resolve_architecture(args.arch, input_shape, classes)


def checkpoint_architecture_at(path: str) -> Architecture:
    """The architecture of the checkpoint at ``path`` (imports torch to read it)."""
    from resnet_gui.engine.checkpoint import checkpoint_architecture, load_checkpoint

    return checkpoint_architecture(load_checkpoint(path), path)


# -- presets ------------------------------------------------------------------------------


def run_presets(args: argparse.Namespace) -> int:
    width = max(len(name) for name in PRESETS)
    write_stdout("".join(f"{name:<{width}}  {preset.description}\n"
                         for name, preset in PRESETS.items()))
    return 0


# -- summary ------------------------------------------------------------------------------


def _shape_text(shape: tuple[int, ...]) -> str:
    return "x".join(str(size) for size in shape)


def _si(value: float, unit: str = "") -> str:
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= factor:
            return f"{value / factor:.2f} {prefix}{unit}"
    return f"{value:.0f} {unit}".rstrip()


def _square(pair: tuple[int, int] | None) -> int | list[int] | None:
    """A receptive field's size or jump: one number when height and width agree."""
    if pair is None:
        return None
    return pair[0] if pair[0] == pair[1] else list(pair)


def _pair_text(pair: tuple[int, int] | None) -> str:
    value = _square(pair)
    return "?" if value is None else _shape_text(value) if isinstance(value, list) else str(value)


def format_summary(result) -> str:
    """The layer table: blocks grouped with their layers indented under them, then totals."""
    header = ("Layer", "Type", "Output shape", "Params", "Mult-adds", "Field", "Jump")
    rows = [
        ("  " * row.depth + row.name, row.type, _shape_text(row.output_shape),
         f"{row.params:,}", f"{row.macs:,}", _pair_text(row.receptive_field),
         _pair_text(row.jump))
        for row in result.layers
    ]
    widths = [max(len(line[i]) for line in [header, *rows]) for i in range(len(header))]

    def line(cells) -> str:
        left = [f"{cell:<{width}}" for cell, width in zip(cells[:3], widths[:3])]
        right = [f"{cell:>{width}}" for cell, width in zip(cells[3:], widths[3:])]
        return "  ".join(left + right).rstrip()

    rule = "-" * len(line(header))
    arch = result.arch
    title = (f"{arch.name}: input {_shape_text(result.input_shape)}, {arch.num_classes} classes, "
             f"{arch.num_blocks} blocks in {len(arch.stages)} stages")
    totals = [
        f"Total parameters:      {result.total_params:,} ({_si(result.total_params)})",
        f"Trainable parameters:  {result.trainable_params:,}",
        f"Multiply-adds:         {result.total_macs:,} ({_si(result.total_macs)}) per example",
        f"Activation memory:     {_si(result.activation_bytes, 'B')} per example "
        "(float32 outputs of every layer)",
    ]
    legend = [("Field: input pixels one output unit sees (theoretical receptive field, "
               "padding included)"), "Jump: input pixels between neighbouring units' fields"]
    return "\n".join([title, *legend, rule, line(header), rule, *map(line, rows), rule,
                      *totals])


def summary_json(result) -> dict:
    """Leaf layers only, so that their parameters and multiply-adds sum to the totals."""
    return {
        "name": result.arch.name,
        "input_shape": list(result.input_shape),
        "num_classes": result.arch.num_classes,
        "layers": [
            {
                "name": row.name,
                "type": row.type,
                "depth": row.depth,
                "output_shape": list(row.output_shape),
                "params": row.params,
                "macs": row.macs,
                "receptive_field": _square(row.receptive_field),
                "jump": _square(row.jump),
            }
            for row in result.leaves
        ],
        "total_params": result.total_params,
        "trainable_params": result.trainable_params,
        "total_macs": result.total_macs,
        "activation_bytes": result.activation_bytes,
        "warnings": list(result.warnings),
    }


def run_summary(args: argparse.Namespace) -> int:
    arch = _architecture_from_args(args)  # before importing torch: bad input fails fast
    from resnet_gui.engine.analysis import analyse

    result = analyse(arch)
    for warning in result.warnings:
        say(f"resnet-gui: warning: {warning}")
    write_stdout((json.dumps(summary_json(result)) if args.json else format_summary(result))
                 + "\n")
    return 0


# -- export -------------------------------------------------------------------------------


STDOUT_FORMATS = ("json", "py")


def run_export(args: argparse.Namespace) -> int:
    if arch_resolve.is_checkpoint_file(args.arch):
        return _export_checkpoint(args)
    arch = _architecture_from_args(args)  # before importing torch: bad input fails fast
    example = f"{arch.name}.{args.fmt}"
    if names_standard_output(args.out):
        if args.fmt not in STDOUT_FORMATS:
            raise UserError(f"--out {args.out} (standard output) takes only the text formats "
                            f"json and py; give a file name for {args.fmt}, such as {example}")
        return _export_to_stdout(arch, args.fmt)
    file_to_write("--out", args.out, example, dash=args.fmt in STDOUT_FORMATS)
    if os.path.isfile(args.arch) and same_file(args.arch, args.out):
        raise UserError(f"--out {args.out} is the architecture file being exported; an export "
                        f"never replaces its input, so choose another name such as {example}")
    from resnet_gui.engine.export import export

    path = export(arch, args.fmt, args.out)
    say(f"wrote {path} ({args.fmt})")
    return 0


def _export_to_stdout(arch: Architecture, fmt: str) -> int:
    if fmt == "json":
        text = dumps(arch)
    else:
        from resnet_gui.engine.export import to_python_source

        text = to_python_source(arch)
    write_stdout(text if text.endswith("\n") else text + "\n")
    return 0


def _export_checkpoint(args: argparse.Namespace) -> int:
    """A trained network: its weights, and its preprocessing unless --no-preprocess."""
    if args.input is not None or args.classes is not None:
        raise UserError("a trained network keeps the input and classes it was trained with; "
                        "leave out --input and --classes to export the checkpoint "
                        f"{args.arch}")
    from pathlib import Path

    from resnet_gui.engine.trained import load_trained

    example = f"{Path(args.arch).stem}.{args.fmt}"
    if args.out == "-":
        if args.fmt != "json":
            raise UserError(f"--out - (standard output) takes only json for a checkpoint (py "
                            f"writes the weights beside the code); give a file name for "
                            f"{args.fmt}, such as {example}")
        return _export_to_stdout(checkpoint_architecture_at(args.arch), "json")
    file_to_write("--out", args.out, example)
    from resnet_gui.engine.export import export_trained

    written = export_trained(load_trained(args.arch), args.fmt, args.out,
                             preprocess=args.preprocess)
    if args.fmt in ("json", "py"):
        what = "its architecture" if args.fmt == "json" else "code and trained weights"
    else:
        what = "trained weights" + (", preprocessing inside: it takes uint8 images"
                                    if args.preprocess else "")
    print(f"wrote {' and '.join(map(str, written))} ({args.fmt}: {what})")
    return 0
