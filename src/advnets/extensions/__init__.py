"""Uses of a trained run that the paper's section 7 proposes: learned approximate inference (`inference.py`),
inpainting by optimising z (`inpaint.py`) and semi-supervised features from D (`semisup.py`).

Each module's `*_report(run, ...)` returns what its command writes to RUN/eval/ (cli/extensions.py writes it).
"""
from __future__ import annotations

import numpy as np

from ..errors import DataError


def check_images(run) -> None:
    """Pixels in [0, 1] are assumed (mask fill, mean-image baseline); toy1d runs have no images. These commands
    read G(z) and D(x) without a class, so they take unconditional runs."""
    if run.config.data.dataset == "toy1d":
        raise DataError("this command needs an image dataset; the run was trained on toy1d",
                        "pass a run trained on mnist, fashion-mnist, digits, ...")
    if run.num_classes:
        raise DataError(f"this command takes an unconditional run; {run.run_dir} is conditional "
                        "(model.conditional)", "pass a run trained without --conditional")


def mse(a, b) -> float:
    return float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))


def sci(x: float) -> str:
    """A rate as the reports write it: 1e-3, 5e-2."""
    return np.format_float_scientific(x, trim="-", exp_digits=1)
