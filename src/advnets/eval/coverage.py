"""Mode coverage: how many of the data's modes a generator reaches, and how evenly (the paper's "Helvetica
scenario", section 6: G collapsing many values of z onto the same x).

Two measurements:

`mixture_coverage`, for samples of a generator trained on a known 2-D mixture (`advnets.data.mixtures`), as VEEGAN
(Srivastava et al. 2017) and PacGAN (Lin et al. 2018) define it on 2,500 samples:

- a sample is *high quality* (HQ) if its distance to the nearest mean is below `threshold` (3) standard deviations;
- *modes captured*: the number of means that are the nearest mean of at least one HQ sample;
- *reverse KL*: KL(p_hq || uniform) = sum_k p_k log(p_k K) in nats, where p is the histogram of the HQ samples over
  their nearest means, normalised to sum to 1, and K the number of modes. "Reverse" because the generated
  distribution comes first: a missed mode contributes 0 (0 log 0 = 0) rather than making the divergence infinite;
  it ranges from 0 (HQ samples spread evenly) to log K (all HQ samples at one mode). Samples that are not HQ do not
  enter it: the fraction of HQ samples is reported beside it. With no HQ sample at all the histogram has no mass
  and the KL is undefined: we return NaN (the PacGAN reference code divides 0 by 0 there too); modes_captured is
  then 0 and high_quality 0.0, which say what happened.

  The three numbers are meant to be read together: a generator can reach every mode with few HQ samples, or put
  all its samples at a few modes with perfect quality.

`class_coverage`, for unconditional image samples, with the labels a real-data classifier predicts for them
(`advnets.eval.classifier`): the histogram of predicted classes, the classes captured, and KL(sample || data) over
classes (the same direction, as the Stacked-MNIST evaluations of Unrolled GAN, VEEGAN and PacGAN compute it
against their uniform class distribution).
"""
from __future__ import annotations

import numpy as np
import torch


def _float64(a) -> torch.Tensor:
    """A numpy array, a list or a torch tensor (on any device, with or without grad) as a float64 CPU tensor."""
    if isinstance(a, torch.Tensor):
        return a.detach().cpu().double()
    return torch.as_tensor(np.asarray(a, dtype=np.float64))


def nearest_means(samples, means) -> tuple[np.ndarray, np.ndarray]:
    """For each sample, the index of its nearest mean and the Euclidean distance to it: ((N,) int64, (N,) float64).

    Distances are exact differences in float64 (no |x|^2 + |m|^2 - 2 x.m expansion), computed a block of samples
    at a time so that memory stays at ~ 8 * 2**20 * D bytes whatever N."""
    x, m = _float64(samples), _float64(means)                        # (N, D), (K, D)
    if x.ndim != 2 or m.ndim != 2 or x.shape[1] != m.shape[1] or len(m) == 0:
        raise ValueError(f"expected samples (N, D) and means (K, D), got {tuple(x.shape)} and {tuple(m.shape)}")
    block = max(1, 2**20 // len(m))
    index, distance = [], []
    for i in range(0, len(x), block):
        d = (x[i:i + block, None, :] - m[None]).square().sum(-1)     # (B, K) squared distances
        dmin, arg = d.min(1)
        index.append(arg)
        distance.append(dmin.sqrt())
    if not index:
        return np.zeros(0, np.int64), np.zeros(0, np.float64)
    return torch.cat(index).numpy().astype(np.int64), torch.cat(distance).numpy()


def kl_divergence(p, q) -> float:
    """KL(p || q) = sum_i p_i log(p_i / q_i) in nats, for histograms or probability vectors (each normalised to sum
    to 1 here). Terms with p_i = 0 are 0; a term with p_i > 0 and q_i = 0 makes it +inf. No smoothing."""
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    if p.shape != q.shape or p.ndim != 1 or (p < 0).any() or (q < 0).any() or not q.sum() > 0:
        raise ValueError(f"expected two non-negative vectors of one length, q not all zero; got {p} and {q}")
    if not p.sum() > 0:
        return float("nan")
    p, q = p / p.sum(), q / q.sum()
    support = p > 0
    if (q[support] == 0).any():
        return float("inf")
    return float(np.sum(p[support] * np.log(p[support] / q[support])))


def mixture_coverage(samples, means, sigma: float, threshold: float = 3.0) -> dict:
    """VEEGAN / PacGAN mode coverage of `samples` (N, D) on a mixture with `means` (K, D) and isotropic std `sigma`.

    Returns {"high_quality": fraction of samples closer than threshold * sigma to their nearest mean,
             "modes_captured": number of means that are the nearest mean of at least one HQ sample,
             "reverse_kl": KL(HQ histogram || uniform over the K means) in nats (NaN when there is no HQ sample),
             "histogram": HQ samples per mean (list of K ints), "n": N}.
    The comparison is strict (distance < threshold * sigma), as in the PacGAN reference code."""
    if not sigma > 0 or not threshold > 0:
        raise ValueError(f"sigma and threshold must be positive, got {sigma} and {threshold}")
    k = len(means)
    index, distance = nearest_means(samples, means)
    hq = distance < threshold * sigma                                 # (N,) bool
    histogram = np.bincount(index[hq], minlength=k)                   # (K,)
    n = len(index)
    return {"high_quality": float(hq.mean()) if n else float("nan"),
            "modes_captured": int((histogram > 0).sum()),
            "reverse_kl": kl_divergence(histogram, np.ones(k)),
            "histogram": [int(c) for c in histogram],
            "n": int(n)}


def class_coverage(predicted_labels, data_class_frequencies) -> dict:
    """Class coverage of unconditional samples from the classes a real-data classifier predicts for them.

    `predicted_labels`: (N,) ints in 0..C-1. `data_class_frequencies`: (C,) class frequencies of the real data
    (counts or probabilities; normalised here), e.g. `np.bincount(train_labels)`.

    Returns {"histogram": samples per class (list of C ints), "classes_captured": classes predicted at least once,
             "kl": KL(q || p) in nats, q the samples' class histogram normalised, p the data's frequencies,
             "n": N}.
    Direction: the samples' distribution first (the "reverse" KL, as for the mixtures): a class the samples miss
    adds 0 (0 log 0 = 0), over-represented classes are what it penalises; all samples in one class of a balanced
    10-class dataset give log 10. No smoothing: if the samples show a class whose data frequency is 0 the KL is
    +inf; with no samples it is NaN."""
    p = np.asarray(data_class_frequencies, dtype=np.float64)
    if isinstance(predicted_labels, torch.Tensor):
        predicted_labels = predicted_labels.detach().cpu().numpy()
    labels = np.asarray(predicted_labels).reshape(-1)
    c = len(p)
    if p.ndim != 1 or c == 0 or (p < 0).any() or not p.sum() > 0:
        raise ValueError(f"data_class_frequencies must be a non-negative (C,) vector with a positive sum, got {p}")
    if labels.size and (not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0 or labels.max() >= c):
        raise ValueError(f"predicted labels must be integers in 0..{c - 1}")
    histogram = np.bincount(labels.astype(np.int64), minlength=c)
    return {"histogram": [int(h) for h in histogram],
            "classes_captured": int((histogram > 0).sum()),
            "kl": kl_divergence(histogram, p),
            "n": int(labels.size)}

