"""advnets: the adversarial nets of Goodfellow et al. (2014), "Generative Adversarial Nets".

    from advnets import make_config, train, load_run
    result = train(make_config("paper-mnist-5k", ["train.epochs=5"]), "runs/demo")
    images = load_run("runs/demo").sample(64)        # (64, 1, 28, 28) in [0, 1]
"""
import importlib

__version__ = "0.1.0"

# The names below load on first use (PEP 562), so that `import advnets` does not import torch: the command line
# sets OpenMP's wait policy first (threads.py), which the OpenMP runtime reads once, when torch loads it.
_EXPORTS = {"Config": "config", "make_config": "config", "preset_names": "config", "AdvnetsError": "errors",
            "load_run": "run", "Reporter": "training", "Trainer": "training", "train": "training"}


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'advnets' has no attribute {name!r}")


__all__ = ["AdvnetsError", "Config", "Reporter", "Trainer", "load_run", "make_config", "preset_names", "train",
           "__version__"]
