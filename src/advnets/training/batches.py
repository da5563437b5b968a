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
        images = torch.as_tensor(np.asarray(images) if not isinstance(images, torch.Tensor) else images)
        if images.ndim == 3:
            images = images[:, None]
        data = images.to(device, torch.float32).reshape(images.shape[0], -1).contiguous()    # (N, d)
        check_size(config, data.shape[0])
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
    labels = None if labels is None else torch.as_tensor(np.asarray(labels), dtype=torch.int64)
    if labels is None or (labels.numel() and int(labels.min()) < 0):
        raise DataError(f"model.conditional needs class labels, and the {dataset} training split has none",
                        "train without --conditional, or on labelled data (mnist, fashion-mnist, mnist-5k, "
                        "digits, cifar10, or an image folder with one subfolder per class)")
    labels = labels.to(device)
    if labels.shape != (n,):
        raise DataError(f"{labels.shape[0]} labels for {n} training images")
    return labels
