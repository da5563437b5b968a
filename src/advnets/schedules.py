"""The paper's optimisation schedules (docs/design.md §1), as pure functions of the update or epoch count."""
from __future__ import annotations

import math


def learning_rate(update: int, lr: float, decay: float, lr_min: float, after: int = 0) -> float:
    """pylearn2's ExponentialDecay: update t (from 0) uses max(lr / decay**t, lr_min). With `after` > 0 the rate
    stays at lr for the first `after` updates and decays from there: t is counted from update `after`."""
    if decay == 1.0:
        return lr
    t = max(update - after, 0)
    if t * math.log(decay) >= math.log(lr / lr_min):        # at the floor (and decay**t may not fit a float)
        return lr_min
    return max(lr / decay ** t, lr_min)


def momentum(epoch: int, start: float, end: float, ramp: tuple[int, int]) -> float:
    """pylearn2's MomentumAdjustor: `start` until epoch ramp[0], then linear to `end` at epoch ramp[1].

    `epoch` counts completed epochs (0 during the first epoch).
    """
    first, last = ramp
    if last <= first:
        return end if epoch >= first else start
    alpha = min(max((epoch - first) / (last - first), 0.0), 1.0)
    return start * (1.0 - alpha) + end * alpha


def top_k_fraction(epoch: int, keep_min: float, decay: float) -> float:
    """Top-k training (Sinha et al. 2020): the fraction of G's minibatch that its update keeps, the samples D rates
    highest. All of it in the first epoch, then `decay` times less per completed epoch, down to `keep_min`
    (1: top-k off)."""
    if keep_min >= 1.0:
        return 1.0
    return max(keep_min, decay ** epoch)
