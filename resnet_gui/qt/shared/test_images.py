"""The test set as the Inspect views see it (the session loads it; the views show it)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TestImages:
    """The test set as stored: uint8 images (N, C, H, W), labels (N,), class names."""

    images: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]

    def __len__(self) -> int:
        return int(len(self.labels))

    def class_name(self, index: int) -> str:
        return self.class_names[index] if 0 <= index < len(self.class_names) else str(index)

    def indices_of_class(self, label: int | None) -> np.ndarray:
        return np.arange(len(self)) if label is None else np.flatnonzero(self.labels == label)

    @classmethod
    def from_bundle(cls, bundle) -> "TestImages":
        """The test half of the engine's DataBundle, as numpy."""
        images = bundle.test_images
        labels = bundle.test_labels
        images = images.cpu().numpy() if hasattr(images, "cpu") else np.asarray(images)
        labels = labels.cpu().numpy() if hasattr(labels, "cpu") else np.asarray(labels)
        if images.ndim == 3:  # (N, H, W): one channel
            images = images[:, None]
        return cls(np.ascontiguousarray(images), labels.astype(np.int64),
                   tuple(bundle.class_names))
