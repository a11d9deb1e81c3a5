"""Datasets held in memory as uint8 tensors, and batches made from them on the fly.

Where the data lives: ``--data-dir`` (``Recipe.data_dir``), else the environment variable
``RESNET_GUI_DATA``, else a per-user folder. Fashion-MNIST, MNIST and CIFAR-10 download through
torchvision when the network allows; Fashion-MNIST falls back to the small sample shipped in
``resources/`` when nothing is configured and nothing can be downloaded. ``folder:PATH`` reads
a class-per-folder image collection (torchvision's ImageFolder layout).

The hot path never touches PIL: a batch is an index into the uint8 tensor; cropping and
flipping happen on the uint8 batch, then one conversion, an optional ``F.interpolate`` resize
and the normalisation. Augmentation draws from a generator seeded by (seed, step), so a resumed
run sees exactly the batches the uninterrupted run would have seen.
"""

from __future__ import annotations

import contextlib
import gzip
import math
import os
import socket
import struct
import sys
import warnings
import zlib
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from resnet_gui.errors import DataError
from resnet_gui.resources import resource_path
from resnet_gui.arch import datasets as arch_datasets
from resnet_gui.arch.recipe import Recipe, check_crop_padding, crop_padding_for

DATA_ENV = "RESNET_GUI_DATA"
SAMPLE_FILE = "fashion-mnist-sample.npz"
FOLDER_PREFIX = arch_datasets.FOLDER_PREFIX
FOLDER_TEST_FRACTION = 0.2  # of each class, when a folder dataset has no test split
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm",
                  ".pgm")


# -- where the data lives ----------------------------------------------------------------------


def user_data_dir() -> Path:
    """The per-user folder of resnet-gui's files, by each platform's convention."""
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "resnet-gui"


def default_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """``data_dir`` when given (``--data-dir``), else ``$RESNET_GUI_DATA``, else the per-user
    ``data`` folder."""
    if data_dir:
        return Path(data_dir).expanduser()
    configured = os.environ.get(DATA_ENV)
    if configured:
        return Path(configured).expanduser()
    return user_data_dir() / "data"


def data_root(recipe: Recipe) -> Path:
    """The folder the recipe's dataset is looked for (and downloaded) in. A folder the user
    named (``--data-dir``) must exist: a typo is never silently created and filled."""
    root = default_data_dir(recipe.data_dir)
    if recipe.data_dir and not root.is_dir():
        problem = "is a file, not a folder" if root.exists() else "does not exist"
        raise DataError(f"the data folder {root} (--data-dir) {problem}; create it or give "
                        "an existing folder")
    return root


def data_dir_is_configured(recipe: Recipe) -> bool:
    return bool(recipe.data_dir) or bool(os.environ.get(DATA_ENV))


# -- the bundle --------------------------------------------------------------------------------


@dataclass
class DataBundle:
    """A dataset in memory: images are ``(N, C, H, W)`` uint8, labels ``(N,)`` int64."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    class_names: tuple[str, ...]
    mean: tuple[float, ...]  # per channel, of the training pixels scaled to [0, 1]
    std: tuple[float, ...]
    name: str = "dataset"  # "Fashion-MNIST", "folder flowers", ...
    source: str = ""  # the folder read, or "the bundled sample"
    notice: str | None = None  # one sentence the user should see (e.g. the sample is in use)
    flip: bool = True  # horizontal flips are a fair augmentation (not for digits)

    @property
    def channels(self) -> int:
        return int(self.train_images.shape[1])

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.train_images.shape[2]), int(self.train_images.shape[3])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def num_train(self) -> int:
        return int(self.train_images.shape[0])

    @property
    def num_test(self) -> int:
        return int(self.test_images.shape[0])

    @property
    def device(self) -> torch.device:
        return self.train_images.device

    def to(self, device: torch.device | str) -> "DataBundle":
        device = torch.device(device)
        if self.train_images.device == device:
            return self
        return replace(
            self,
            train_images=self.train_images.to(device),
            train_labels=self.train_labels.to(device),
            test_images=self.test_images.to(device),
            test_labels=self.test_labels.to(device),
        )


def make_bundle(train_images, train_labels, test_images, test_labels, class_names, **extra
                ) -> DataBundle:
    """A bundle from arrays or tensors, ``(N, H, W)`` or ``(N, C, H, W)`` uint8; the
    normalisation statistics come from the training images."""
    train_images = _as_nchw(train_images)
    test_images = _as_nchw(test_images)
    train_labels = torch.as_tensor(np.array(train_labels, dtype=np.int64))
    test_labels = torch.as_tensor(np.array(test_labels, dtype=np.int64))
    mean, std = channel_statistics(train_images)
    return DataBundle(train_images, train_labels, test_images, test_labels,
                      tuple(str(name) for name in class_names), mean, std, **extra)


def _as_nchw(images) -> torch.Tensor:
    if isinstance(images, torch.Tensor):
        tensor = images
    else:
        array = np.ascontiguousarray(images)
        tensor = torch.from_numpy(array if array.flags.writeable else array.copy())
    if tensor.dtype != torch.uint8:
        raise DataError(f"images must be 8-bit (uint8), got {tensor.dtype}")
    if tensor.ndim == 3:
        tensor = tensor.unsqueeze(1)
    if tensor.ndim != 4:
        raise DataError(f"images must be (N, H, W) or (N, C, H, W), got shape {tuple(tensor.shape)}")
    return tensor.contiguous()


def channel_statistics(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std in [0, 1] units, from a histogram (no float copy of the set)."""
    means, stds = [], []
    values = np.arange(256, dtype=np.float64) / 255.0
    for channel in range(images.shape[1]):
        pixels = images[:, channel].reshape(-1).cpu()
        counts = torch.bincount(pixels.to(torch.int64), minlength=256).double().numpy() if (
            pixels.numel()) else np.zeros(256)
        total = counts.sum()
        if total == 0:
            means.append(0.5)
            stds.append(0.25)
            continue
        mean = float((counts * values).sum() / total)
        var = float((counts * (values - mean) ** 2).sum() / total)
        means.append(mean)
        stds.append(max(var ** 0.5, 1e-3))
    return tuple(means), tuple(stds)


# -- IDX datasets (Fashion-MNIST, MNIST) -------------------------------------------------------


@dataclass(frozen=True)
class IdxDataset:
    """Where an IDX dataset's files live; what the dataset is comes from the architecture table."""

    info: arch_datasets.Dataset
    folder: str  # torchvision's folder name under the data folder
    torchvision_class: str

    files: tuple[str, ...] = (
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    )

    @property
    def key(self) -> str:
        return self.info.key

    @property
    def title(self) -> str:
        return self.info.name

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.info.class_names

    @property
    def flip(self) -> bool:
        return self.info.flip

    def candidate_folders(self, root: Path) -> list[Path]:
        return [root / self.folder / "raw", root / self.folder, root]


FASHION_MNIST = IdxDataset(arch_datasets.FASHION_MNIST, "FashionMNIST", "FashionMNIST")
MNIST = IdxDataset(arch_datasets.MNIST, "MNIST", "MNIST")
IDX_DATASETS = {spec.key: spec for spec in (FASHION_MNIST, MNIST)}


def memory_bytes() -> int:
    """This machine's physical memory (a large number where the platform does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # pragma: no cover - not POSIX
        return 1 << 40


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (optionally gzipped) as a uint8 array; a damaged file is a DataError.

    The header is read first and checked against the file's size (and the machine's
    memory) before the data is: a header promising more than the file holds, or a huge
    (sparse) file, is one sentence, never a MemoryError.
    """
    fix = "delete it and download or copy the dataset again"
    try:
        with (gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")) as handle:
            head = handle.read(4)
            if len(head) < 4 or head[0] != 0 or head[1] != 0:
                raise DataError(f"{path} is not an IDX file (its header is damaged); {fix}")
            type_code, ndim = head[2], head[3]
            if type_code != 0x08:
                raise DataError(f"{path} holds IDX type 0x{type_code:02x}, not unsigned bytes; "
                                f"{fix}")
            sizes = handle.read(4 * ndim)
            if ndim == 0 or len(sizes) < 4 * ndim:
                raise DataError(f"{path} is truncated inside its header; {fix}")
            dims = struct.unpack(f">{ndim}I", sizes)
            expected = math.prod(dims)
            if path.suffix != ".gz":
                held = os.fstat(handle.fileno()).st_size - 4 - 4 * ndim
                if held != expected:
                    raise DataError(f"{path} is corrupt: its header promises {expected:,} bytes "
                                    f"of data but it holds {held:,}; {fix}")
            if expected > memory_bytes() // 2:
                raise DataError(f"{path} claims {expected / 2**30:,.1f} GiB of data, more than "
                                f"half of this machine's memory ({memory_bytes() / 2**30:,.0f} "
                                f"GiB); it is damaged or far larger than any dataset resnet-gui "
                                f"trains on; {fix}")
            data = handle.read(expected + 1)  # one byte more shows a file that goes on
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(f"cannot read {path} ({getattr(error, 'strerror', None) or error}); "
                        f"{fix}") from None
    except MemoryError:
        raise DataError(f"{path} does not fit in memory; {fix}") from None
    if len(data) != expected:
        raise DataError(
            f"{path} is corrupt: its header promises {expected:,} bytes of data but it holds "
            f"{len(data):,}{'' if len(data) <= expected else ' or more'}; {fix}")
    return np.frombuffer(data, dtype=np.uint8).reshape(dims)


def _find_idx_files(spec: IdxDataset, root: Path) -> dict[str, Path] | None:
    for folder in spec.candidate_folders(root):
        found: dict[str, Path] = {}
        for name in spec.files:
            for candidate in (folder / name, folder / f"{name}.gz"):
                if candidate.is_file():
                    found[name] = candidate
                    break
        if len(found) == len(spec.files):
            return found
    return None


def _load_idx(spec: IdxDataset, files: dict[str, Path], source: str) -> DataBundle:
    arrays = {name: read_idx(path) for name, path in files.items()}
    train_x, train_y, test_x, test_y = (arrays[name] for name in spec.files)
    for images_name, labels_name in (spec.files[:2], spec.files[2:]):
        images, labels = arrays[images_name], arrays[labels_name]
        if images.ndim != 3 or labels.ndim != 1 or 0 in images.shape[1:]:
            raise DataError(f"{files[images_name]} and {files[labels_name]} do not hold images "
                            "and labels; download or copy the dataset again")
        if len(images) != len(labels):
            raise DataError(
                f"{files[images_name]} has {len(images):,} images but {files[labels_name]} has "
                f"{len(labels):,} labels; download or copy the dataset again")
        if len(labels) and int(labels.max()) >= len(spec.class_names):
            raise DataError(f"{files[labels_name]} holds label {int(labels.max())}, but "
                            f"{spec.title} has {len(spec.class_names)} classes; it is corrupt")
    return make_bundle(train_x, train_y, test_x, test_y, spec.class_names, name=spec.title,
                       source=source, flip=spec.flip)


def _missing_message(spec_title: str, root: Path, folder: Path, files: tuple[str, ...],
                     reason: str) -> str:
    return (f"{spec_title} is not in {folder} (expected {', '.join(files)}, or the same "
            f"names with .gz) and could not be downloaded ({reason}); copy those files there, "
            f"or point --data-dir (or the {DATA_ENV} environment variable) at a folder that "
            f"holds them")


@contextlib.contextmanager
def socket_timeout(seconds: float):
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def download_torchvision(class_name: str, root: Path) -> str | None:
    """Download a torchvision dataset into ``root``; None on success, else the reason."""
    import torchvision.datasets

    dataset_class = getattr(torchvision.datasets, class_name)
    try:
        root.mkdir(parents=True, exist_ok=True)
        with socket_timeout(30), contextlib.redirect_stdout(sys.stderr):
            for train in (True, False):
                dataset_class(str(root), train=train, download=True)
    except Exception as error:  # every way a download fails means the same to the user
        return download_failure(error)
    return None


def download_failure(error: Exception) -> str:
    """Why a download failed, in a few words: "no network", or the error's first line."""
    text = str(error).lower()
    if any(word in text for word in ("name or service", "urlopen", "network", "resolve",
                                     "timed out", "connection", "temporary failure")):
        return "no network"
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {first_line}" if first_line else type(error).__name__


def load_sample() -> DataBundle:
    """The class-balanced Fashion-MNIST sample shipped in ``resources/``."""
    path = resource_path(SAMPLE_FILE)
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (OSError, ValueError, zlib.error) as error:
        raise DataError(f"the bundled sample {path} cannot be read ({error}); reinstall "
                        "resnet-gui or point --data-dir at a copy of Fashion-MNIST") from None
    return make_bundle(
        arrays["train_images"], arrays["train_labels"], arrays["test_images"],
        arrays["test_labels"], tuple(str(name) for name in arrays["class_names"]),
        name="Fashion-MNIST sample", source="the bundled sample", flip=True,
    )


def _load_idx_dataset(spec: IdxDataset, recipe: Recipe, download: bool) -> DataBundle:
    root = data_root(recipe)
    files = _find_idx_files(spec, root)
    reason = "downloads are switched off"
    if files is None and download:
        reason = download_torchvision(spec.torchvision_class, root) or ""
        files = _find_idx_files(spec, root)
        if files is None and not reason:
            reason = "the download did not produce the files"
    if files is not None:
        return _load_idx(spec, files, source=str(files[spec.files[0]].parent))
    if spec is FASHION_MNIST and not data_dir_is_configured(recipe):
        bundle = load_sample()
        bundle.notice = (
            f"Fashion-MNIST is not in {root / spec.folder / 'raw'} and could not be downloaded "
            f"({reason}), so this run uses the bundled sample of {bundle.num_train:,} training "
            f"and {bundle.num_test:,} test images; point --data-dir or {DATA_ENV} at the full "
            "dataset for real results")
        return bundle
    raise DataError(_missing_message(spec.title, root, root / spec.folder / "raw", spec.files,
                                     reason))


# -- CIFAR-10 ----------------------------------------------------------------------------------

CIFAR10 = arch_datasets.CIFAR10
CIFAR_FILES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5",
               "test_batch", "batches.meta")


def _load_cifar10(recipe: Recipe, download: bool) -> DataBundle:
    import torchvision.datasets

    root = data_root(recipe)
    folder = root / "cifar-10-batches-py"
    present = all((folder / name).is_file() for name in CIFAR_FILES)
    reason = "downloads are switched off"
    if not present and download:
        reason = download_torchvision("CIFAR10", root) or ""
        present = all((folder / name).is_file() for name in CIFAR_FILES)
    if not present:
        raise DataError(_missing_message(CIFAR10.name, root, folder, CIFAR_FILES,
                                         reason or "the download did not produce the files"))
    try:
        train = torchvision.datasets.CIFAR10(str(root), train=True, download=False)
        test = torchvision.datasets.CIFAR10(str(root), train=False, download=False)
    except Exception as error:  # torchvision says "corrupted" or fails to unpickle
        raise DataError(f"{CIFAR10.name} in {folder} cannot be read ({type(error).__name__}: "
                        f"{error}); delete the folder and download or copy it again") from None
    return make_bundle(
        np.asarray(train.data).transpose(0, 3, 1, 2), train.targets,
        np.asarray(test.data).transpose(0, 3, 1, 2), test.targets, CIFAR10.class_names,
        name=CIFAR10.name, source=str(folder), flip=CIFAR10.flip,
    )


# -- image folders -----------------------------------------------------------------------------

_GREY_MODES = {"1", "L", "LA", "I", "I;16", "F", "P;L"}


def _unreadable(folder: str | os.PathLike, error: OSError) -> DataError:
    return DataError(f"cannot read the folder {folder} ({error.strerror or error}); check that "
                     "it and the folders in it are readable")


def _class_folders(root: Path) -> list[Path]:
    try:
        return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError as error:
        raise _unreadable(root, error) from None


def _files_under(folder: Path) -> list[Path]:
    """Every file below ``folder``, without entering linked folders; an unreadable folder is
    a DataError (``Path.rglob`` skips it silently, losing a class's images)."""
    def refuse(error: OSError) -> None:
        raise _unreadable(error.filename, error)

    return [Path(parent) / name for parent, _, names in os.walk(folder, onerror=refuse)
            for name in names]


def _scan(root: Path) -> tuple[list[str], list[tuple[Path, int]]]:
    classes = [p.name for p in _class_folders(root)]
    samples = []
    for index, name in enumerate(classes):
        found = [(path, index) for path in sorted(_files_under(root / name))
                 if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()]
        if not found:  # a class the network would learn never to predict
            raise DataError(f"the class folder {root / name} holds no images "
                            f"({', '.join(IMAGE_SUFFIXES[:4])}, ...); add some or remove it")
        samples += found
    return classes, samples


@contextlib.contextmanager
def _open_image(path: Path, fix: str = "remove or replace it"):
    """The image at ``path`` opened with PIL; failing to read it, there or in the ``with``
    block, is one DataError naming the file and ``fix``."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            # Large but within PIL's limit: it is read (and resized) like any other.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                yield image
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise DataError(f"cannot read image {path} ({error}); {fix}") from None


def read_image(path: Path, size: tuple[int, int], grey: bool,
               fix: str = "remove or replace it") -> np.ndarray:
    """One image file as uint8 (C, H, W): greyscale or RGB whatever its own mode, resized
    (bilinear) to ``size`` (H, W) where it differs. A folder dataset's images are read so, and
    so is an image given to ``predict``. An unreadable file is a DataError ending in ``fix``."""
    from PIL import Image

    with _open_image(path, fix) as image:
        image = image.convert("L" if grey else "RGB")
        if image.size != (size[1], size[0]):
            image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
        array = np.asarray(image, dtype=np.uint8)
    return array[None] if grey else array.transpose(2, 0, 1)


def _read_images(samples: list[tuple[Path, int]], size: tuple[int, int], grey: bool,
                 ) -> tuple[np.ndarray, np.ndarray]:
    channels = 1 if grey else 3
    images = np.empty((len(samples), channels, size[0], size[1]), np.uint8)
    labels = np.empty(len(samples), np.int64)
    for position, (path, label) in enumerate(samples):
        images[position] = read_image(path, size, grey)
        labels[position] = label
    return images, labels


def _image_properties(samples: list[tuple[Path, int]]) -> tuple[tuple[int, int], bool]:
    """The most common (H, W) and whether every image is greyscale (headers only)."""
    sizes: Counter = Counter()
    grey = True
    for path, _ in samples:
        with _open_image(path) as image:
            sizes[(image.size[1], image.size[0])] += 1
            grey = grey and image.mode in _GREY_MODES
    return sizes.most_common(1)[0][0], grey


def _load_folder(path_text: str, recipe: Recipe) -> DataBundle:
    root = Path(path_text).expanduser()
    layout = f"arrange it as {root}/<class name>/<image files> (optionally inside train/ and test/)"
    if not root.is_dir():
        problem = "is a file, not a folder" if root.exists() else "does not exist"
        raise DataError(f"image folder {root} {problem}; {layout}")
    train_root, test_root = root / "train", next(
        (root / name for name in ("test", "val") if (root / name).is_dir()), None)
    if train_root.is_dir() and test_root is not None:
        classes, train_samples = _scan(train_root)
        test_classes, test_samples = _scan(test_root)
        if test_classes != classes:
            raise DataError(f"{train_root} and {test_root} hold different class folders "
                            f"({', '.join(classes)} vs {', '.join(test_classes)}); give both the "
                            "same classes")
    else:
        classes, samples = _scan(root)
        train_samples, test_samples = _split_samples(samples, len(classes), recipe.seed)
    if len(classes) < 2 or not train_samples:
        raise DataError(f"{root} holds {len(classes)} class folder(s) with "
                        f"{len(train_samples)} training images; {layout}, with at least two "
                        "classes")
    if not test_samples:
        raise DataError(f"{root} has too few images to set any aside for testing; add images "
                        "or a test/ folder")
    size, grey = _image_properties(train_samples + test_samples)
    if recipe.resize:  # read at the training size: large photos never sit in memory whole
        size = (recipe.resize, recipe.resize)
    train_x, train_y = _read_images(train_samples, size, grey)
    test_x, test_y = _read_images(test_samples, size, grey)
    return make_bundle(train_x, train_y, test_x, test_y, classes, name=f"folder {root.name}",
                       source=str(root), flip=True)


def _split_samples(samples: list[tuple[Path, int]], num_classes: int, seed: int
                   ) -> tuple[list[tuple[Path, int]], list[tuple[Path, int]]]:
    """A seeded, per-class split: FOLDER_TEST_FRACTION of each class (>= 1 where it has 2+)."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label in range(num_classes):
        members = [s for s in samples if s[1] == label]
        order = rng.permutation(len(members))
        count = int(round(len(members) * FOLDER_TEST_FRACTION))
        if len(members) >= 2:
            count = max(count, 1)
        test += [members[i] for i in sorted(order[:count])]
        train += [members[i] for i in sorted(order[count:])]
    return train, test


# -- entry point -------------------------------------------------------------------------------


def balanced_subset(labels: torch.Tensor, limit: int, seed: int) -> torch.Tensor:
    """Indices of ``limit`` examples spread evenly over the classes, chosen by ``seed``."""
    count = int(labels.shape[0])
    if limit >= count:
        return torch.arange(count)
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(count, generator=generator)
    shuffled = labels.cpu()[order]
    # Rank of each example within its class, in shuffled order; then take rank 0 of every
    # class, rank 1 of every class, ... until ``limit``.
    by_class = torch.argsort(shuffled, stable=True)
    sorted_labels = shuffled[by_class]
    starts = torch.searchsorted(sorted_labels, sorted_labels, right=False)
    rank = torch.empty(count, dtype=torch.int64)
    rank[by_class] = torch.arange(count) - starts
    chosen = order[torch.argsort(rank * count + torch.arange(count), stable=True)[:limit]]
    return torch.sort(chosen).values


def limit_bundle(bundle: DataBundle, limit_train: int | None, limit_test: int | None,
                 seed: int) -> DataBundle:
    changes = {}
    if limit_train and limit_train < bundle.num_train:
        keep = balanced_subset(bundle.train_labels, limit_train, seed)
        changes.update(train_images=bundle.train_images[keep].contiguous(),
                       train_labels=bundle.train_labels[keep])
    if limit_test and limit_test < bundle.num_test:
        keep = balanced_subset(bundle.test_labels, limit_test, seed + 1)
        changes.update(test_images=bundle.test_images[keep].contiguous(),
                       test_labels=bundle.test_labels[keep])
    if not changes:
        return bundle
    limited = replace(bundle, **changes)
    if "train_images" in changes:
        limited.mean, limited.std = channel_statistics(limited.train_images)
    return limited


def load_data(recipe: Recipe, download: bool = True) -> DataBundle:
    """The recipe's dataset in memory (on the CPU), limited as the recipe asks.

    Raises :class:`DataError` with one sentence saying what is missing or damaged and what to do.
    """
    dataset = recipe.dataset
    if dataset in IDX_DATASETS:
        bundle = _load_idx_dataset(IDX_DATASETS[dataset], recipe, download)
    elif dataset == CIFAR10.key:
        bundle = _load_cifar10(recipe, download)
    elif dataset.startswith(FOLDER_PREFIX):
        bundle = _load_folder(dataset[len(FOLDER_PREFIX):], recipe)
    else:
        raise DataError(f"unknown dataset {dataset!r}; use one of "
                        f"{', '.join(arch_datasets.DATASET_KEYS)} or {FOLDER_PREFIX}PATH")
    check_crop_padding(recipe, min(bundle.image_size))  # a folder's side is known only now
    for count, split in ((bundle.num_train, "training"), (bundle.num_test, "test")):
        if count == 0:  # a run over nothing would "complete" with 0 steps or no accuracy
            where = f" in {bundle.source}" if bundle.source else ""
            raise DataError(f"{bundle.name}{where} holds no {split} images; give a dataset "
                            f"with {split} images (download or copy it again if it is damaged)")
    return limit_bundle(bundle, recipe.limit_train, recipe.limit_test, recipe.seed)


# -- batches -----------------------------------------------------------------------------------


@dataclass
class BatchMaker:
    """Turns uint8 index batches into normalised float batches ready for the network."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    device: torch.device
    resize: int | None = None
    augment: bool = False
    flip: bool = True
    channels_last: bool = False
    crop_padding: int | None = None  # None: crop_padding_for(side)
    _scale: torch.Tensor = field(init=False, repr=False)
    _shift: torch.Tensor = field(init=False, repr=False)

    def __post_init__(self) -> None:
        std = torch.tensor(self.std, dtype=torch.float32)
        mean = torch.tensor(self.mean, dtype=torch.float32)
        # (x / 255 - mean) / std as one multiply-add.
        self._scale = (1.0 / (255.0 * std)).view(1, -1, 1, 1).to(self.device)
        self._shift = (-mean / std).view(1, -1, 1, 1).to(self.device)

    @classmethod
    def for_bundle(cls, bundle: DataBundle, recipe: Recipe, device: torch.device,
                   channels_last: bool | None = None) -> "BatchMaker":
        return cls(bundle.mean, bundle.std, torch.device(device), recipe.resize,
                   recipe.augment, bundle.flip,
                   recipe.channels_last if channels_last is None else channels_last,
                   recipe.crop_padding)

    def output_size(self, image_size: tuple[int, int]) -> tuple[int, int]:
        return (self.resize, self.resize) if self.resize else image_size

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None,
                 part: tuple[int, int] | None = None) -> torch.Tensor:
        """``images`` (N, C, H, W) uint8 -> float32 (N, C, H', W'); augmented when a
        generator is given and the maker augments. ``part`` = (start, total) says that the
        images are rows ``start`` on of a batch of ``total`` (one process's share): they get
        the augmentation those rows would get in the whole batch."""
        if self.augment and generator is not None:
            images = self._crop_and_flip(images, generator, part)
        images = images.to(self.device, non_blocking=True)
        batch = resize_and_normalise(images.float(), self.resize, self._scale, self._shift)
        if self.channels_last and batch.shape[1] > 1:
            return batch.contiguous(memory_format=torch.channels_last)
        return _standard_strides(batch)

    def _crop_and_flip(self, images: torch.Tensor, generator: torch.Generator,
                       part: tuple[int, int] | None = None) -> torch.Tensor:
        n, _, h, w = images.shape
        pad = self.crop_padding if self.crop_padding is not None else crop_padding_for(min(h, w))
        start, drawn = part if part is not None else (0, n)
        rows = slice(start, start + n)
        # Draw where the generator lives: on a GPU, a copy from the CPU would wait for every
        # queued kernel first.
        device = generator.device
        dy = torch.randint(0, 2 * pad + 1, (drawn,), generator=generator, device=device)[rows]
        dx = torch.randint(0, 2 * pad + 1, (drawn,), generator=generator, device=device)[rows]
        flips = (torch.rand(drawn, generator=generator, device=device) < 0.5)[rows]
        images = images.to(device, non_blocking=True)
        if pad > 0:
            padded = F.pad(images, (pad, pad, pad, pad)).permute(0, 2, 3, 1)  # N, H, W, C
            rows = (dy[:, None] + torch.arange(h, device=device))[:, :, None]
            cols = (dx[:, None] + torch.arange(w, device=device))[:, None, :]
            if self.flip:
                # A flip is a reversed column index: fold it into the same gather.
                cols = torch.where(flips[:, None, None], cols.flip(2), cols)
            index = torch.arange(n, device=device)[:, None, None]
            images = padded[index, rows, cols].permute(0, 3, 1, 2)
        elif self.flip:
            images = torch.where(flips[:, None, None, None], images.flip(3), images)
        return images


def resize_and_normalise(batch: torch.Tensor, resize: int | None, scale: torch.Tensor,
                         shift: torch.Tensor) -> torch.Tensor:
    """Float pixels (N, C, H, W, 0-255) -> the network's input: a bilinear resize to
    ``resize`` x ``resize`` (antialiased when shrinking), then ``(x / 255 - mean) / std`` as
    one multiply-add. The trainer's batches and the exported preprocessing share it."""
    if resize and tuple(batch.shape[-2:]) != (resize, resize):
        batch = F.interpolate(batch, size=(resize, resize), mode="bilinear",
                              align_corners=False, antialias=batch.shape[-1] > resize)
    return torch.addcmul(shift, batch, scale)


def _standard_strides(batch: torch.Tensor) -> torch.Tensor:
    """``batch`` with row-major strides. A one-channel batch cut from a channels-last gather
    counts as contiguous but keeps strides like (HW, 1, W, 1); oneDNN's convolution backward
    corrupts the heap on those (torch 2.14, CPU), so give it the canonical strides."""
    expected, size = [], 1
    for dim in reversed(batch.shape):
        expected.append(size)
        size *= dim
    if tuple(reversed(expected)) == batch.stride():
        return batch
    return batch.clone(memory_format=torch.contiguous_format)


def preprocess(bundle: DataBundle, images: torch.Tensor, recipe: Recipe,
               device: torch.device | str = "cpu") -> torch.Tensor:
    """Images as the network sees them at test time (resized, normalised), on ``device``."""
    maker = BatchMaker(bundle.mean, bundle.std, torch.device(device), recipe.resize,
                       augment=False, channels_last=False)
    return maker(images if images.ndim == 4 else images.unsqueeze(1))


def epoch_order(num_examples: int, seed: int, epoch: int) -> torch.Tensor:
    """The shuffled order of one epoch, a pure function of (seed, epoch)."""
    generator = torch.Generator().manual_seed(derive_seed(seed, 1, epoch))
    return torch.randperm(num_examples, generator=generator)


def augment_generator(seed: int, step: int, device: torch.device | str = "cpu"
                      ) -> torch.Generator:
    """The generator of one step's augmentation, a pure function of (seed, step) on a given
    device (the same seed draws other numbers on a GPU than on the CPU)."""
    return torch.Generator(device=device).manual_seed(derive_seed(seed, 2, step))


def derive_seed(seed: int, purpose: int, index: int) -> int:
    """Independent 63-bit seeds per (seed, purpose, index), stable across versions."""
    value = (seed * 0x9E3779B97F4A7C15 + purpose * 0xBF58476D1CE4E5B9 + index) & (2**64 - 1)
    value ^= value >> 31
    value = (value * 0x94D049BB133111EB) & (2**64 - 1)
    value ^= value >> 29
    return value & (2**63 - 1)
