"""The built-in datasets, one row each (standard library only).

Every other list of datasets derives from this table: the recipe's allowed values, the
engine's loaders (which add where the files live), the editor's toolbar and the Train tab.
Besides these, a recipe may name ``folder:PATH``, an image folder with one subfolder per class.
"""

from __future__ import annotations

from dataclasses import dataclass

FOLDER_PREFIX = "folder:"


@dataclass(frozen=True)
class Dataset:
    key: str  # the recipe's value and the command line's: "fashion-mnist"
    name: str  # for people: "Fashion-MNIST"
    channels: int
    image_size: int  # the images' own side; the network's input may differ (resize)
    class_names: tuple[str, ...]
    flip: bool  # horizontal flips are a fair augmentation (not for digits)
    description: str
    train_images: int  # the full training set (what "auto" settings are planned for)
    test_images: int

    @property
    def classes(self) -> int:
        return len(self.class_names)


FASHION_MNIST = Dataset(
    key="fashion-mnist", name="Fashion-MNIST", channels=1, image_size=28,
    class_names=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                 "Sneaker", "Bag", "Ankle boot"),
    flip=True, description="70,000 greyscale 28x28 clothing images, 10 classes",
    train_images=60_000, test_images=10_000,
)
MNIST = Dataset(
    key="mnist", name="MNIST", channels=1, image_size=28,
    class_names=tuple(str(digit) for digit in range(10)),
    flip=False, description="70,000 greyscale 28x28 handwritten digits, 10 classes",
    train_images=60_000, test_images=10_000,
)
CIFAR10 = Dataset(
    key="cifar10", name="CIFAR-10", channels=3, image_size=32,
    class_names=("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                 "ship", "truck"),
    flip=True, description="60,000 colour 32x32 photos, 10 classes",
    train_images=50_000, test_images=10_000,
)

DATASETS: tuple[Dataset, ...] = (FASHION_MNIST, MNIST, CIFAR10)
DEFAULT_DATASET = FASHION_MNIST
BY_KEY: dict[str, Dataset] = {dataset.key: dataset for dataset in DATASETS}
BY_NAME: dict[str, Dataset] = {dataset.name: dataset for dataset in DATASETS}
DATASET_KEYS: tuple[str, ...] = tuple(BY_KEY)


def dataset_for(key: str) -> Dataset | None:
    """The built-in dataset a recipe names, or None (``folder:PATH``, or unknown)."""
    return BY_KEY.get(key)
