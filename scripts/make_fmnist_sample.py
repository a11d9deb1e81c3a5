"""Make resources/fashion-mnist-sample.npz: a small, real, class-balanced Fashion-MNIST sample.

The app trains on it when no data folder is configured and nothing can be downloaded, so that
it works offline straight after installation. Usage (from the repository root):

    python scripts/make_fmnist_sample.py [--source ../shared/data] [--train-per-class 500]
        [--test-per-class 100] [--seed 0] [--output resources/fashion-mnist-sample.npz]

``--source`` is a folder holding Fashion-MNIST's four IDX files (directly, or in
FashionMNIST/raw as torchvision lays them out). The images are drawn per class with the seed,
and no training image of the sample duplicates one of its test images.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from resnet_gui.engine.data import FASHION_MNIST, _find_idx_files, read_idx  # noqa: E402

MAX_BYTES = 5 * 1024 * 1024


def pick(labels: np.ndarray, per_class: int, rng: np.random.Generator,
         exclude: set[int] = frozenset()) -> np.ndarray:
    chosen = []
    for label in range(len(FASHION_MNIST.class_names)):
        members = [i for i in rng.permutation(np.flatnonzero(labels == label)) if i not in exclude]
        if len(members) < per_class:
            raise SystemExit(f"class {label} has only {len(members)} images, {per_class} wanted")
        chosen.extend(members[:per_class])
    return np.sort(np.asarray(chosen, dtype=np.int64))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--train-per-class", type=int, default=500)
    parser.add_argument("--test-per-class", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=REPO / "resources" / "fashion-mnist-sample.npz")
    args = parser.parse_args()

    files = _find_idx_files(FASHION_MNIST, args.source)
    if files is None:
        raise SystemExit(f"Fashion-MNIST's IDX files are not in {args.source}")
    train_x, train_y, test_x, test_y = (read_idx(files[name]) for name in FASHION_MNIST.files)
    rng = np.random.default_rng(args.seed)

    test_pick = pick(test_y, args.test_per_class, rng)
    test_digests = {hashlib.sha1(test_x[i].tobytes()).digest() for i in test_pick}
    duplicates = {i for i in range(len(train_x))
                  if hashlib.sha1(train_x[i].tobytes()).digest() in test_digests}
    train_pick = pick(train_y, args.train_per_class, rng, exclude=duplicates)

    args.output.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        args.output,
        train_images=train_x[train_pick], train_labels=train_y[train_pick],
        test_images=test_x[test_pick], test_labels=test_y[test_pick],
        class_names=np.asarray(FASHION_MNIST.class_names),
    )
    size = args.output.stat().st_size
    print(f"wrote {args.output}: {len(train_pick)} training and {len(test_pick)} test images, "
          f"{size / 1e6:.2f} MB ({len(duplicates)} training images skipped as test duplicates)")
    if size > MAX_BYTES:
        raise SystemExit(f"the sample is larger than {MAX_BYTES} bytes; use fewer images")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
