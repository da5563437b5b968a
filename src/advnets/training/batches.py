"""The training data as the loop sees it: one (N, d) tensor on the run's device, its labels, and minibatches."""
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

    @classmethod
    def prepare(cls, config, images, labels, device: torch.device) -> "TrainingData":
        """Checked training data for `config`: enough examples for one iteration, and for a conditional run
        (model.conditional) one class label per image."""
        images = torch.as_tensor(np.asarray(images) if not isinstance(images, torch.Tensor) else images)
        if images.ndim == 3:
            images = images[:, None]
        t = config.train
        data = images.to(device, torch.float32).reshape(images.shape[0], -1).contiguous()    # (N, d)
        if data.shape[0] < t.batch_size * t.k_discriminator_steps:
            raise ConfigError(f"the training split has {data.shape[0]} examples, fewer than one iteration "
                              f"needs ({t.batch_size} x k={t.k_discriminator_steps})", "lower train.batch_size")
        return cls(data, _class_labels(config, labels, data.shape[0], device), tuple(images.shape[1:]))

    def output_bias(self, model_config) -> torch.Tensor | None:
        """G's output bias from the data's pixel marginals, when the config asks for it."""
        if model_config.generator_output_bias != "marginals":
            return None
        if self.images.min() < 0 or self.images.max() > 1:
            raise ConfigError("model.generator_output_bias=marginals needs data in [0, 1]",
                              "use --set model.generator_output_bias=zero")
        return marginal_logits(self.images)

    def batch(self, perm: torch.Tensor, index: int, m: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The index-th minibatch of an epoch in order `perm`: (m, d) images and their (m,) labels (or None)."""
        rows = perm[index * m:(index + 1) * m]
        labels = None if self.labels is None else torch.index_select(self.labels, 0, rows)
        return torch.index_select(self.images, 0, rows), labels

    def sample_classes(self, n: int, rng: torch.Generator) -> torch.Tensor | None:
        """Classes for n samples of a conditional G, drawn like the data's (the labels of random examples)."""
        if self.labels is None:
            return None
        rows = torch.randint(self.labels.shape[0], (n,), generator=rng, device=self.labels.device)
        return torch.index_select(self.labels, 0, rows)


def _class_labels(config, labels, n: int, device: torch.device) -> torch.Tensor | None:
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
