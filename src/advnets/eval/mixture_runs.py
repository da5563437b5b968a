"""Mode coverage of a trained run on a 2-D mixture (grid, ring): samples from its G and the three numbers the
field reports together (eval/coverage.py `mixture_coverage`), for `advnets eval --coverage`, `advnets figure
scatter` and benchmarks/modes.py."""
from __future__ import annotations

import numpy as np

from ..data.mixtures import mixture_means, mixture_sigma
from ..data.registry import MIXTURE_DATASETS
from ..errors import RunError
from .coverage import mixture_coverage

SAMPLES = 2500      # VEEGAN's and PacGAN's count


def check_mixture_run(run) -> str:
    """The run's dataset name, if it is a 2-D mixture; else a RunError."""
    name = run.config.data.dataset
    if name not in MIXTURE_DATASETS:
        raise RunError(f"{run.run_dir} was trained on {name}, not on a 2-D mixture",
                       f"mode coverage of this kind needs a run on {' or '.join(MIXTURE_DATASETS)}")
    return name


def run_mixture_coverage(run, n: int = SAMPLES, seed: int = 0) -> tuple[np.ndarray, dict]:
    """n samples (n, 2) of the run's G (noise from `seed`) and their coverage: {"high_quality", "modes_captured",
    "reverse_kl", "histogram", "n"} plus "dataset", "sigma", "modes"."""
    name = check_mixture_run(run)
    if n < 1:
        raise RunError(f"need at least one sample, got {n}")
    samples = run.sample(n, seed=seed).reshape(n, 2).numpy()
    means, sigma = mixture_means(name), mixture_sigma(name)
    return samples, {"dataset": name, "sigma": sigma, "modes": len(means), **mixture_coverage(samples, means, sigma)}
