"""The memmap store of the training data (`data.storage` memmap): an image folder too large to hold, read a
minibatch at a time from its decoded uint8 cache (data/folder_cache.py) by a torch DataLoader.

The loop asks for minibatches exactly as it asks the memory store (batches.py): `batch(perm, index, m, part)`, the
rows `perm[index*m:(index+1)*m][part]` of the epoch's order, which the trainer draws from the run's generator and
keeps in every checkpoint. On the first call of an epoch (or after a resume, at any index) the store plans the
rest of the epoch's minibatches from `perm` and hands the plan to the DataLoader as its sampler: `data.workers`
processes read the next minibatches ahead (2 each) in that order while the device computes, into pinned memory
on CUDA, and the copy to the device does not wait. Nothing random happens in the workers, so the minibatches do
not depend on their number: a run gives the same parameters on either store, and resumes mid-epoch exactly.

A minibatch crosses to the device as uint8 (a quarter of float32's bytes) and becomes float32 there by the same
IEEE division k / 255 the memory store did on the host; grey from colour and contrast normalisation are computed
in the workers instead, with the functions the memory store used (per image, so equal values).
"""
from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from ..data.folder import DEFAULT_SIZE, pixels_to_float, split_indices
from ..data.folder_cache import open_folder_cache
from ..data.transforms import global_contrast_normalize
from ..errors import ConfigError, DataError
from ..fileio import load_npy
from ..models.layers import mean_logits
from .batches import check_size, class_labels


@contextlib.contextmanager
def worker_deaths(data):
    """PyTorch's report that a DataLoader worker of `data` (the streamed store) died -- killed, or out of memory --
    raised by its SIGCHLD handler wherever the loop was, as one DataError; other errors pass through."""
    try:
        yield
    except (RuntimeError, EOFError, ConnectionError) as exc:       # EOFError: it died while handing over a batch
        died = isinstance(exc, (EOFError, ConnectionError)) or "DataLoader worker" in str(exc)
        if getattr(data, "storage", None) != "memmap" or not died:
            raise
        detail = str(exc).strip() or f"{type(exc).__name__} while a batch was handed over"
        raise DataError(f"a process reading the training images ({data.describe()}) stopped: {detail}",
                        "run the command again with --resume to continue from the last checkpoint (data.workers=0 "
                        "reads the images in the training process)") from None


class _Rows(Dataset):
    """Cache rows -> a minibatch: (B, C_s, H, W) uint8, or (B, C, H, W) float32 when `host_float` (converted as
    the memory store converts). The memory map is opened in each worker on first use."""

    def __init__(self, path: Path, channels: int, contrast_normalize: float, host_float: bool):
        self.path, self.channels, self.gcn, self.host_float = path, channels, contrast_normalize, host_float
        self.pixels = None

    def __getstate__(self):                      # a spawned worker opens its own map
        return {**self.__dict__, "pixels": None}

    def read(self, rows: np.ndarray) -> np.ndarray:
        if self.pixels is None:
            self.pixels = load_npy(self.path, mmap=True)           # not through a link, not a FIFO
        order = np.argsort(rows, kind="stable")                  # read in file order, put back in batch order
        block = np.empty((len(rows), *self.pixels.shape[1:]), np.uint8)
        block[order] = self.pixels[rows[order]]
        return block

    def floats(self, rows: np.ndarray) -> np.ndarray:
        x = pixels_to_float(self.read(rows), self.channels)                     # (B, C, H, W) float32
        return global_contrast_normalize(x, self.gcn) if self.gcn else x

    def __getitem__(self, rows: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(self.floats(rows) if self.host_float else self.read(rows))


class _Plan(Sampler):
    """The cache rows of the minibatches still to come this epoch, in order; replaced at each (re)start."""

    def __init__(self):
        self.blocks: list[np.ndarray] = []

    def __iter__(self):
        return iter(self.blocks)

    def __len__(self) -> int:
        return len(self.blocks)


class StreamedTrainingData:
    """The training split of a decoded image folder, streamed: the interface of batches.TrainingData."""

    storage = "memmap"

    def __init__(self, config, pixels: np.ndarray, path: Path, rows: np.ndarray, labels: np.ndarray | None,
                 device: torch.device):
        d, t = config.data, config.train
        self.device, self.rows, self.path = device, rows, path                 # rows: the split's cache rows
        self.k = t.k_discriminator_steps
        c_s, size = pixels.shape[1], pixels.shape[2]
        c = d.channels or c_s
        self.image_shape = (c, size, size)
        self.labels_numpy = None if labels is None else labels[rows]
        self.labels = class_labels(config, self.labels_numpy, len(rows), device)
        # on the device: k / 255 of the stored channel(s); grey -> RGB repeats them there
        self.repeat = 3 if (c, c_s) == (3, 1) else 1
        host_float = bool(d.contrast_normalize) or (c, c_s) == (1, 3)
        self.dataset = _Rows(path, d.channels, d.contrast_normalize, host_float)
        self.workers = d.workers
        self.scale = torch.tensor(255.0, device=device)      # a device tensor: an exact division, not a reciprocal
        self._plan, self._loader, self._iter = _Plan(), None, None
        self._key, self._next = None, 0

    @classmethod
    def open(cls, config, folder: Path, listing: tuple, device: torch.device) -> "StreamedTrainingData":
        """The training split of `folder` (its `listing`, data/folder.py checked_listing), decoded into the cache
        first if it is not there."""
        cache = open_folder_cache(folder, config.data.image_size or DEFAULT_SIZE, listing)
        rows = split_indices(len(cache.pixels))["train"]
        if rows.size == 0:
            raise DataError(f"{folder} has only {len(cache.pixels)} readable images, too few for a train split",
                            "add images (at least 3)")
        check_size(config, len(rows))
        return cls(config, cache.pixels, cache.path, rows, cache.labels, device)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def num_classes(self) -> int:
        return 0 if self.labels is None else int(self.labels.max()) + 1

    def describe(self) -> str:
        return (f"memmap: {self.path}, {self.workers} DataLoader worker{'s' if self.workers != 1 else ''}"
                + (", pinned memory" if self.device.type == "cuda" else ""))

    def batch(self, perm: torch.Tensor, index: int, m: int,
              part: slice = slice(None)) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The index-th minibatch of m rows of an epoch in order `perm` (its rows `part`): (B, d) float32 images
        on the device and their (B,) labels (or None) -- the values the memory store gives."""
        if self._key != (id(perm), m, part) or index != self._next or self._iter is None:
            self._start(perm, index, m, part)
        try:
            pixels = next(self._iter)
        except StopIteration:                     # asked past the planned epoch: plan again from here
            self._start(perm, index, m, part)
            pixels = next(self._iter)
        self._next += 1
        x = pixels.to(self.device, non_blocking=True)                          # (B, C_s, H, W)
        if x.dtype == torch.uint8:
            x = x.repeat_interleave(self.repeat, 1) if self.repeat > 1 else x
            x = x.float() / self.scale
        labels = None
        if self.labels is not None:
            labels = torch.index_select(self.labels, 0, perm[index * m:(index + 1) * m][part])
        return x.reshape(x.shape[0], -1), labels

    def _start(self, perm: torch.Tensor, index: int, m: int, part: slice) -> None:
        """Plan the minibatches index .. the epoch's last that the trainer takes, and (re)start the loader."""
        order = perm.cpu().numpy()                                    # one copy per epoch (or resume)
        batches = len(self) // (m * self.k) * self.k
        self._plan.blocks = [self.rows[order[i * m:(i + 1) * m][part]] for i in range(index, batches)]
        if self._loader is None:
            w = self.workers
            self._loader = DataLoader(self.dataset, batch_size=None, sampler=self._plan, num_workers=w,
                                      pin_memory=self.device.type == "cuda", persistent_workers=w > 0,
                                      prefetch_factor=2 if w else None)
        self._iter = iter(self._loader)
        self._key, self._next = (id(perm), m, part), index
        self._perm = perm                         # kept: its id() stays unique while it is the epoch's order

    def sample_classes(self, n: int, rng: torch.Generator) -> torch.Tensor | None:
        """Classes for n samples of a conditional G, drawn like the data's (as batches.TrainingData)."""
        if self.labels is None:
            return None
        rows = torch.randint(self.labels.shape[0], (n,), generator=rng, device=self.labels.device)
        return torch.index_select(self.labels, 0, rows)

    def output_bias(self, model_config) -> torch.Tensor | None:
        """G's output bias from the pixel marginals (models/layers.py marginal_logits), from an exact float64 sum
        taken 4,096 images at a time: the memory store's value."""
        if model_config.generator_output_bias != "marginals":
            return None
        total, low, high = 0.0, np.inf, -np.inf
        for start in range(0, len(self.rows), 4096):
            x = self.dataset.floats(self.rows[start:start + 4096]).reshape(-1, int(np.prod(self.image_shape)))
            total = total + x.sum(0, dtype=np.float64)
            low, high = min(low, float(x.min())), max(high, float(x.max()))
        if low < 0 or high > 1:
            raise ConfigError("model.generator_output_bias=marginals needs data in [0, 1]",
                              "use --set model.generator_output_bias=zero")
        return mean_logits(torch.from_numpy(total / len(self.rows)))

    def close(self) -> None:
        """Stop the worker processes (a later `batch` starts new ones)."""
        if self._iter is not None and hasattr(self._iter, "_shutdown_workers"):
            with contextlib.suppress(RuntimeError):      # PyTorch's report of a worker that died: stopping anyway
                self._iter._shutdown_workers()
        self._loader, self._iter, self._key, self._perm = None, None, None, None
