"""Where the training split lives: `data.storage` memory (batches.py `TrainingData`) or memmap (streaming.py
`StreamedTrainingData`, image folders only); auto takes memmap for a folder whose float32 training set would exceed
`memory_budget` (a quarter of the RAM, and on a GPU of its memory), counted from the number of files before any is
decoded (3 channels unless data.channels says 1)."""
from __future__ import annotations

import os

import torch

from ..data import load_data_split
from ..data.folder import DEFAULT_SIZE, checked_listing
from .batches import TrainingData
from .streaming import StreamedTrainingData


def memory_budget(device: torch.device) -> int:
    """Bytes the memory store may take before `data.storage` auto streams instead: a quarter of the RAM, and on a
    GPU also at most a quarter of its memory."""
    budget = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4
    if device.type == "cuda":
        budget = min(budget, torch.cuda.get_device_properties(device).total_memory // 4)
    return budget


def choose_storage(config, device: torch.device, files: int | None = None) -> str:
    """memory | memmap for `config` (data.storage; auto: memmap for a folder of `files` images whose float32 training
    set would exceed `memory_budget`)."""
    d = config.data
    if d.storage != "auto" or d.dataset != "folder":
        return "memory" if d.storage == "auto" else d.storage
    side = d.image_size or DEFAULT_SIZE
    return "memmap" if files * (d.channels or 3) * side * side * 4 > memory_budget(device) else "memory"


def load_training_data(config, device: torch.device):
    """(training data on `device`, its labels as a numpy array or None) from the store `choose_storage` picks."""
    d = config.data
    if d.dataset == "folder" and d.storage != "memory":
        folder, listing = checked_listing(d.data_dir, d.channels)
        if choose_storage(config, device, len(listing)) == "memmap":
            data = StreamedTrainingData.open(config, folder, listing, device)
            return data, data.labels_numpy
    split = load_data_split(d, "train", run_seed=config.train.seed)
    return TrainingData.prepare(config, split.images, split.labels, device), split.labels
