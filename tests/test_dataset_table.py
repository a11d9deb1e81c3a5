"""One table of datasets (arch.datasets); the recipe, the engine, the editor's toolbar and the
Train tab all list exactly its rows."""

from __future__ import annotations

from resnet_gui.engine import data as engine_data
from resnet_gui.arch import datasets as table
from resnet_gui.arch.recipe import DATASETS as RECIPE_DATASETS
from resnet_gui.arch.recipe import Recipe
from tests.engine.test_data import write_fashion_mnist


def test_the_recipe_accepts_the_tables_keys():
    assert RECIPE_DATASETS == ("fashion-mnist", "mnist", "cifar10") == table.DATASET_KEYS


def test_the_engine_loaders_take_their_identity_from_the_table():
    for key, loader in engine_data.IDX_DATASETS.items():
        assert loader.info is table.BY_KEY[key]
        assert (loader.title, loader.class_names, loader.flip) == (
            loader.info.name, loader.info.class_names, loader.info.flip)
    assert set(engine_data.IDX_DATASETS) | {engine_data.CIFAR10.key} == set(table.BY_KEY)


def test_a_loaded_dataset_has_the_tables_shape_and_classes(tmp_path):
    write_fashion_mnist(tmp_path / "FashionMNIST" / "raw")
    bundle = engine_data.load_data(Recipe(data_dir=str(tmp_path)), download=False)
    row = table.FASHION_MNIST
    assert (bundle.channels, bundle.image_size, bundle.class_names, bundle.name) == (
        row.channels, (row.image_size, row.image_size), row.class_names, row.name)
    sample = engine_data.load_sample()
    assert sample.class_names == row.class_names and sample.channels == row.channels


def test_the_window_offers_the_tables_rows():
    from resnet_gui.qt.shared import datasets as qt_datasets
    from resnet_gui.qt.training_tabs import EDITOR_DATASETS
    from resnet_gui.qt.train.recipe_form import DATASET_CHOICES

    assert qt_datasets.DATASETS is table.DATASETS
    assert qt_datasets.dataset_named("CIFAR-10") is table.CIFAR10
    assert qt_datasets.dataset_named("nonsense") is table.DEFAULT_DATASET
    assert EDITOR_DATASETS == {row.name: row.key for row in table.DATASETS}
    assert DATASET_CHOICES[:-1] == tuple((row.key, row.name) for row in table.DATASETS)
    assert DATASET_CHOICES[-1][0] == "folder"
