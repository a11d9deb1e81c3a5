"""The Build tab: the block palette, the architecture canvas, the layer table, the inspector,
and the editor controller (the document, the selection and the live analysis)."""
