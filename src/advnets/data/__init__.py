"""Datasets: IDX reader, checksummed downloads, and the train / valid / test splits.

    from advnets.data import load_split
    split = load_split("mnist", "train", data_dir="~/data/mnist")  # split.images: (50000, 1, 28, 28)
"""
from advnets.data.sources import DATASETS, Split, default_cache_dir, load_split

__all__ = ["DATASETS", "Split", "default_cache_dir", "load_split"]
