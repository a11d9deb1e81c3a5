"""``resnet-gui grow CHECKPOINT --insert STAGE:INDEX [--kind KIND] --out NEW.pt``: insert a
block into a trained network without changing what it computes (see engine/growth.py).

``train --resume NEW.pt`` continues the run with a fresh optimizer and a short warm-up;
``train NEW.pt`` trains the same grown architecture from scratch with the same plan, the
comparison that says whether growing paid off.
"""

from __future__ import annotations

import argparse
import os
import sys

from resnet_gui.arch.model import BLOCK_KINDS
from resnet_gui.commands.paths import file_to_read, file_to_write
from resnet_gui.errors import UserError

GROWABLE_KINDS = tuple(kind for kind in BLOCK_KINDS if not kind.startswith("plain"))
# Far above float32's rounding on any logit: a change this large means the function changed.
EXACT_TOLERANCE = 1e-5


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "grow", help="insert a block into a trained network, keeping what it computes",
        description="Insert a residual block that starts as the identity (its last batch "
        "norm, or a pre-activation block's last convolution, at zero) into a stage of a "
        "trained network: every trained layer keeps its weights and the outputs do not "
        "change. 'train --resume NEW.pt' continues training it with a fresh optimizer and a "
        "short warm-up; 'train NEW.pt --checkpoint scratch.pt' trains the same architecture "
        "from scratch with the same plan, for comparison.",
    )
    parser.add_argument("checkpoint", metavar="CHECKPOINT",
                        help="a checkpoint written by resnet-gui train --checkpoint")
    parser.add_argument("--insert", required=True, metavar="STAGE:INDEX",
                        help="where the block goes, in torchvision naming: layer2:1 puts it at "
                        "index 1 of layer2, after its first block")
    parser.add_argument("--kind", choices=GROWABLE_KINDS,
                        help="the new block's kind (default: that of the block before it)")
    parser.add_argument("--out", required=True, metavar="NEW.pt",
                        help="the grown checkpoint to write")
    parser.add_argument("--epochs", type=int, metavar="N",
                        help="the continued plan's total epochs (default: the checkpoint's; "
                        "give more to continue a run that has finished)")
    parser.add_argument("--warmup-epochs", type=float, default=None, metavar="E",
                        help="epochs over which the learning rate climbs back after growing "
                        "(default 0.1)")
    parser.set_defaults(func=run_grow)
    return parser


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


def run_grow(args: argparse.Namespace) -> int:
    file_to_read("CHECKPOINT", args.checkpoint, "run.pt",
                 "a checkpoint written by resnet-gui train --checkpoint")
    file_to_write("--out", args.out, "grown.pt")
    if _same_file(args.checkpoint, args.out):
        raise UserError(f"--out {args.out} is the checkpoint being grown; give another file so "
                        "that the trained network stays as it is")
    from resnet_gui.engine.growth import DEFAULT_WARMUP_EPOCHS, grow_checkpoint, write_grown
    from resnet_gui.engine.trained import load_trained

    trained = load_trained(args.checkpoint)
    warmup = DEFAULT_WARMUP_EPOCHS if args.warmup_epochs is None else args.warmup_epochs
    growth = grow_checkpoint(trained, args.insert, args.kind, args.epochs, warmup)
    write_grown(growth, args.out)
    exact = growth.max_logit_change <= EXACT_TOLERANCE
    print(f"wrote {args.out}: a {growth.kind} block inserted as {growth.block} "
          f"({growth.arch.num_blocks} blocks); max |delta logit| = "
          f"{growth.max_logit_change:.3g} on random inputs"
          + (" (the grown network computes what the trained one did)" if exact else ""))
    if not exact:
        print(f"resnet-gui: warning: the outputs changed by up to {growth.max_logit_change:.3g}"
              "; the grown network does not compute exactly what the trained one did",
              file=sys.stderr)
    if growth.finished:
        epochs = trained.recipe.epochs
        print(f"resnet-gui: note: the run had finished its {epochs} epoch"
              f"{'s' if epochs != 1 else ''}; "
              "give grow --epochs N (more than that) to train the grown network with "
              "train --resume", file=sys.stderr)
    print(f"continue: resnet-gui train --resume {args.out}\n"
          f"compare:  resnet-gui train {args.out} --checkpoint scratch.pt   "
          "(the same architecture and plan from scratch)")
    return 0
