"""The training data as the loop sees it: its labels on the run's device and minibatches, from one of two stores.

* memory (`TrainingData`): one (N, d) float32 tensor on the run's device; a minibatch is an index_select on the
  device, no copy from the host per step.
* memmap (streaming.py `StreamedTrainingData`, image folders only): the folder decoded once into a uint8 .npy
  cache (data/folder_cache.py) and read a minibatch at a time by a torch DataLoader (data.workers processes reading
  ahead, pinned memory on CUDA). Same rows, same values: a run gives the same parameters on either.

storage.py chooses between them (`data.storage`; auto: memmap for a folder too large for memory).
Both have `batch(perm, index, m, part)`, `sample_classes`, `output_bias`, `labels`, `image_shape`, `device`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import ConfigError, DataError
from ..models.layers import marginal_logits


@dataclass
class TrainingData:
    images: torch.Tensor               # (N, d) float32 on the device, flattened
    labels: torch.Tensor | None        # (N,) int64 on the device, for a conditional run; else None
    image_shape: tuple[int, ...]       # (C, H, W)

    @property
    def num_classes(self) -> int:
        return 0 if self.labels is None else int(self.labels.max()) + 1

    def __len__(self) -> int:
        return self.images.shape[0]

    storage = "memory"
    device = property(lambda self: self.images.device)

    def describe(self) -> str:
        return "memory: one tensor on the device"

    def close(self) -> None:
        """Nothing to release (the streamed store stops its worker processes here)."""

    @classmethod
    def prepare(cls, config, images, labels, device: torch.device) -> "TrainingData":
        """Checked training data for `config`: enough examples for one iteration, and for a conditional run
        (model.conditional) one class label per image."""
        images = checked_images(images)
        check_size(config, images.shape[0])
        if labels is not None:
            check_label_shape(labels, images.shape[0])
        data = images.to(device, torch.float32).reshape(images.shape[0], -1).contiguous()    # (N, d)
        return cls(data, class_labels(config, labels, data.shape[0], device), tuple(images.shape[1:]))

    def output_bias(self, model_config) -> torch.Tensor | None:
        """G's output bias from the data's pixel marginals, when the config asks for it."""
        if model_config.generator_output_bias != "marginals":
            return None
        if self.images.min() < 0 or self.images.max() > 1:
            raise ConfigError("model.generator_output_bias=marginals needs data in [0, 1]",
                              "use --set model.generator_output_bias=zero")
        return marginal_logits(self.images)

    def batch(self, perm: torch.Tensor, index: int, m: int,
              part: slice = slice(None)) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The index-th minibatch of m rows of an epoch in order `perm`, or its rows `part` (a process's block in a
        distributed run): (B, d) images and their (B,) labels (or None)."""
        rows = perm[index * m:(index + 1) * m][part]
        labels = None if self.labels is None else torch.index_select(self.labels, 0, rows)
        return torch.index_select(self.images, 0, rows), labels

    def sample_classes(self, n: int, rng: torch.Generator) -> torch.Tensor | None:
        """Classes for n samples of a conditional G, drawn like the data's (the labels of random examples)."""
        if self.labels is None:
            return None
        rows = torch.randint(self.labels.shape[0], (n,), generator=rng, device=self.labels.device)
        return torch.index_select(self.labels, 0, rows)


def checked_images(images) -> torch.Tensor:
    """`images` (train_images) as a (N, C, H, W) tensor of numbers: (N, H, W) gains its channel axis; any other
    shape, or values that are not numbers, is a DataError naming the expected shape."""
    if not isinstance(images, torch.Tensor):
        images = np.asarray(images)
        if images.dtype.kind not in "biuf":
            raise DataError(f"train_images must hold numbers, got an array of {images.dtype}",
                            "pass float pixel values, e.g. in [0, 1]")
        images = torch.as_tensor(images)
    if images.ndim == 3:
        images = images[:, None]
    if images.ndim != 4 or min(images.shape[1:]) < 1:
        raise DataError(f"train_images must be an (N, C, H, W) or (N, H, W) array, got shape {tuple(images.shape)}",
                        "e.g. 2-D points as (N, 1, 1, 2), grey images as (N, 1, 28, 28)")
    if images.is_complex():
        raise DataError("train_images must hold real numbers, got complex ones")
    return images


def check_size(config, n: int) -> None:
    t = config.train
    if n < t.batch_size * t.k_discriminator_steps:
        raise ConfigError(f"the training split has {n} examples, fewer than one iteration "
                          f"needs ({t.batch_size} x k={t.k_discriminator_steps})", "lower train.batch_size")


def class_labels(config, labels, n: int, device: torch.device) -> torch.Tensor | None:
    """The training labels as a (N,) int64 tensor on the device, checked, for a conditional run."""
    if not config.model.conditional:
        return None
    dataset = config.data.dataset
    labels = None if labels is None else checked_labels(labels, n)
    if labels is None or (labels.numel() and int(labels.min()) < 0):
        raise DataError(f"model.conditional needs class labels, and the {dataset} training split has none",
                        "train without --conditional, or on labelled data (mnist, fashion-mnist, mnist-5k, "
                        "digits, cifar10, or an image folder with one subfolder per class)")
    return labels.to(device)


def check_label_shape(labels, n: int) -> None:
    """`labels` (train_labels) hold one class per image: shape (N,)."""
    shape = tuple(labels.shape) if hasattr(labels, "shape") else np.shape(labels)
    if shape != (n,):
        raise DataError(f"train_labels must have shape (N,) = ({n},), one class per image, got shape {shape}")


def checked_labels(labels, n: int) -> torch.Tensor:
    """`labels` (train_labels) as a (N,) int64 tensor: one whole number per image, else a DataError."""
    check_label_shape(labels, n)
    values = labels.cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    if values.dtype.kind not in "iu" and not (values.dtype.kind in "bf" and np.all(values == np.round(values))):
        raise DataError(f"train_labels must be whole class numbers, got an array of {values.dtype}",
                        "pass integer class indices 0, 1, ...")
    return torch.as_tensor(values.astype(np.int64, copy=False))
