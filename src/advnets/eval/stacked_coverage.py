"""Mode coverage on Stacked MNIST (data/stacked.py): which of the 1,000 digit triples a generator draws, and how
evenly, as VEEGAN (Srivastava et al. 2017) and PacGAN (Lin et al. 2018) measure it on 26,000 samples.

A sample's triple is read channel by channel by the source dataset's digit classifier (`StackedClassifier`, built
by `classifier.load_or_train_classifier` for a stacked-mnist config). Then (`stacked_coverage`):

- *modes captured*: the triples seen at least once;
- *KL*: KL(q || p) in nats, q the samples' triple histogram normalised, p the data's triple distribution. We define p
  as the product of the three channels' digit frequencies in the training stacks (`stacked_mode_frequencies`): the
  distribution the stacking draws from (three independent digits), estimated from 3 x stack_size digits. It is never
  zero once every digit appears in every channel (any stack_size above a few hundred), so the KL is finite. The
  empirical histogram of the training triples is not used: 128,000 stacks put about 128 in each cell, and a small
  stack_size leaves cells empty, which would make the KL infinite for a generator that draws them;
- *KL to uniform*: KL(q || uniform over 1,000), the number the papers report (their source digits are close to
  balanced, so the two KLs differ by little).

The direction is the reverse KL of eval/coverage.py: missed modes add 0; a generator with all its samples on one
triple scores log 1000 = 6.9 against uniform.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..data.stacked import CHANNELS, MODES, label_digits, triple_labels
from .coverage import class_coverage, kl_divergence
from .sample_report import class_frequencies


@dataclass
class StackedClassifier:
    """The 1,000-class classifier of stacked images, made of a digit classifier (eval/classifier.py `Classifier`,
    trained on the source's digits) applied to each channel: the class of a stack is 100 a + 10 b + c for the
    digits a, b, c it sees in channels 0, 1, 2. Same interface as `Classifier` (predict, probabilities, features,
    num_classes, image_shape, device, held_out_accuracy, held_out_size, info)."""

    digit: Any                                     # the source's `Classifier`
    num_classes: int = field(default=MODES, init=False)
    info: dict = field(init=False)                 # the digit classifier's, and how it is applied

    def __post_init__(self):
        self.info = {**self.digit.info, "stacked": f"the digit classifier applied to each of the {CHANNELS} "
                     "channels; class 100 a + 10 b + c", "digit_held_out_accuracy": self.digit.held_out_accuracy}

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (CHANNELS, *self.digit.image_shape[1:])

    @property
    def device(self) -> torch.device:
        return self.digit.device

    @property
    def held_out_accuracy(self) -> float:
        """Of a whole triple, on stacks of the source's valid digits: the digit accuracy cubed (a stack's three
        digits are independent draws, so its three readings are right independently)."""
        return self.digit.held_out_accuracy ** CHANNELS

    @property
    def held_out_size(self) -> int:
        return self.digit.held_out_size

    def _channels(self, images) -> torch.Tensor:
        """(N, 3, H, W) or (N, 3*H*W) stacks, numpy or torch -> (3N, 1, H, W) digits, stack by stack."""
        x = torch.as_tensor(images)
        return x.reshape(len(x) * CHANNELS, *self.digit.image_shape)

    def digits(self, images, batch_size: int = 1000) -> np.ndarray:
        """The digit the classifier sees in each channel, (N, 3) int64."""
        return self.digit.predict(self._channels(images), batch_size).reshape(-1, CHANNELS)

    def predict(self, images, batch_size: int = 1000) -> np.ndarray:
        """The most likely triple of each stack, (N,) int64 in 0..999 (each channel's most likely digit)."""
        return triple_labels(self.digits(images, batch_size))

    def probabilities(self, images, batch_size: int = 1000) -> np.ndarray:
        """(N, 1000) float32: the product of the channels' digit probabilities, triple 100 a + 10 b + c at column
        100 a + 10 b + c."""
        p = self.digit.probabilities(self._channels(images), batch_size).reshape(-1, CHANNELS, 10)
        return np.einsum("na,nb,nc->nabc", p[:, 0], p[:, 1], p[:, 2]).reshape(len(p), MODES)

    def features(self, images, batch_size: int = 1000) -> np.ndarray:
        """The three channels' digit features side by side, (N, 3 * hidden) float32: the space in which the
        feature metrics (Frechet distance, KID, ...) compare stacks."""
        f = self.digit.features(self._channels(images), batch_size)
        return f.reshape(-1, CHANNELS * f.shape[1])


def stacked_mode_frequencies(train_labels) -> np.ndarray:
    """p, the data's distribution over the 1,000 triples: the product of the digit frequencies of each channel of
    the training stacks (labels 100 a + 10 b + c), (1000,) float64 summing to 1."""
    digits = label_digits(train_labels)                                        # (N, 3)
    if len(digits) == 0:
        raise ValueError("stacked_mode_frequencies needs at least one training label")
    per_channel = [np.bincount(digits[:, c], minlength=10) / len(digits) for c in range(CHANNELS)]
    return np.einsum("a,b,c->abc", *per_channel).reshape(MODES)


def data_mode_frequencies(dataset: str, train_labels, num_classes: int = 0) -> np.ndarray:
    """The data's frequencies of the classes a classifier reports for `dataset`: for stacked-mnist the triples'
    `stacked_mode_frequencies`, else each class's share of `train_labels` (at least `num_classes` entries)."""
    labels = np.asarray(train_labels, dtype=np.int64).reshape(-1)
    if dataset == "stacked-mnist":
        return stacked_mode_frequencies(labels)
    return class_frequencies(labels, num_classes)


def stacked_coverage(predicted, mode_frequencies) -> dict:
    """Stacked-MNIST mode coverage of samples whose triples a classifier read: `predicted` is (N,) labels in 0..999
    or (N, 3) digits, channel by channel; `mode_frequencies` the data's (1000,) triple distribution p (e.g.
    `stacked_mode_frequencies(train_labels)`; counts or probabilities).

    Returns {"modes_captured": triples predicted at least once (of 1,000), "kl": KL(q || p) in nats,
             "kl_uniform": KL(q || uniform over 1,000), "histogram": samples per triple (list of 1,000 ints),
             "n": N}, q the samples' triple histogram normalised. NaN KLs with no samples."""
    labels = predicted.detach().cpu().numpy() if isinstance(predicted, torch.Tensor) else np.asarray(predicted)
    if labels.ndim == 2:
        if labels.shape[1] != CHANNELS or labels.size and (labels.min() < 0 or labels.max() > 9):
            raise ValueError(f"expected (N, 3) digits in 0..9, got shape {labels.shape}")
        labels = triple_labels(labels)
    if np.shape(mode_frequencies) != (MODES,):
        raise ValueError(f"mode_frequencies must have {MODES} entries, got shape {np.shape(mode_frequencies)}")
    c = class_coverage(labels, mode_frequencies)
    return {"modes_captured": c["classes_captured"], "kl": c["kl"],
            "kl_uniform": kl_divergence(c["histogram"], np.ones(MODES)), "histogram": c["histogram"], "n": c["n"]}
