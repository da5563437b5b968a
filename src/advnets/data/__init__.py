"""Datasets: one registry of readers (registry.py), checksummed downloads, and the train / valid / test splits.

    from advnets.data import load_split
    split = load_split("mnist", "train", data_dir="~/data/mnist")  # split.images: (50000, 1, 28, 28)
"""
from advnets.data.download import default_cache_dir
from advnets.data.registry import DATASETS, HeldOut, load_data_split, load_held_out, load_split
from advnets.data.split import Split
from advnets.data.toy import GaussianMixture1D
from advnets.data.transforms import for_display, global_contrast_normalize

__all__ = ["DATASETS", "GaussianMixture1D", "HeldOut", "Split", "default_cache_dir", "for_display",
           "global_contrast_normalize", "load_data_split", "load_held_out", "load_split"]
