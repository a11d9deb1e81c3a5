"""``resnet-gui predict CHECKPOINT IMAGE... [--top K] [--json]``: classify image files with a
trained network.

Each image is read as the network's dataset holds its images (greyscale or colour, at the
dataset's image size) and then prepared exactly as training prepared its test images (resize,
normalisation), from the record the checkpoint keeps.
"""

from __future__ import annotations

import argparse
import json

from resnet_gui.commands.paths import file_to_read
from resnet_gui.errors import UserError

DEFAULT_TOP = 5


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "predict", help="classify images with a trained network",
        description="Classify image files (PNG, JPEG, BMP, ...; colour or greyscale) with the "
        "network of a checkpoint written by resnet-gui train, preprocessed as in training, "
        "and print the most probable classes of each.",
    )
    parser.add_argument("checkpoint", metavar="CHECKPOINT",
                        help="a checkpoint written by resnet-gui train --checkpoint")
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files to classify")
    parser.add_argument("--top", type=int, default=DEFAULT_TOP, metavar="K",
                        help=f"how many classes to show per image (default {DEFAULT_TOP})")
    parser.add_argument("--json", action="store_true",
                        help='print [{"image": path, "top": [{"class": name, "probability": '
                        'p}, ...]}, ...]')
    parser.set_defaults(func=run_predict)
    return parser


def format_prediction(prediction) -> str:
    classes = ", ".join(f"{name} {100 * probability:.1f} %"
                        for name, probability in prediction.top)
    return f"{prediction.image}: {classes}"


def run_predict(args: argparse.Namespace) -> int:
    file_to_read("CHECKPOINT", args.checkpoint, "run.pt",
                 "a checkpoint written by resnet-gui train --checkpoint")
    if args.top < 1:
        raise UserError(f"--top must be at least 1, got {args.top}")
    for image in args.images:
        file_to_read("IMAGE", image, "photo.png", "an image file such as a PNG or JPEG")
    from resnet_gui.engine.trained import load_trained

    predictions = load_trained(args.checkpoint).classify(args.images, args.top)
    if args.json:
        print(json.dumps([prediction.to_dict() for prediction in predictions]))
    else:
        for prediction in predictions:
            print(format_prediction(prediction))
    return 0
