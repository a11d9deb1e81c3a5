"""The Inspect tab: feature maps of any layer for any test image, the confusion matrix,
per-class accuracy and the mistakes gallery. It reads the shared training session."""
