"""advnets: the adversarial nets of Goodfellow et al. (2014), "Generative Adversarial Nets".

    from advnets import make_config, train, load_run
    result = train(make_config("paper-mnist-5k", ["train.epochs=5"]), "runs/demo")
    images = load_run("runs/demo").sample(64)        # (64, 1, 28, 28) in [0, 1]
"""
__version__ = "0.1.0"

from .config import Config, make_config, preset_names  # noqa: E402
from .errors import AdvnetsError  # noqa: E402
from .runs import load_run  # noqa: E402
from .training import Reporter, Trainer, train  # noqa: E402

__all__ = ["AdvnetsError", "Config", "Reporter", "Trainer", "load_run", "make_config", "preset_names", "train",
           "__version__"]
