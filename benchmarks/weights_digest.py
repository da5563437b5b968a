"""SHA-256 of the trained weights on every training path, for checking that a refactor changes no result.

Each path trains a small run on the 8x8 digits (or a 2-D mixture) from the same seed, with the run directory
written and resumed half way (so checkpoints and resume are on the path too), and prints one JSON object:
{path: sha256 of G's, D's, the G average's and both optimisers' tensors}. Run it before and after a change on the
same machine and thread count; equal digests mean bit-identical weights. Digests differ between CPUs and thread
counts (float rounding), so they are compared, never stored as expected values.

    OMP_NUM_THREADS=1 python benchmarks/weights_digest.py > before.json
"""
from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
from pathlib import Path

import torch

from advnets import load_run, make_config, train

TINY = {"data.dataset": "digits", "model.noise_dim": 8, "model.generator_hidden": [32, 32],
        "model.discriminator_units": [16, 16], "model.discriminator_pieces": 3, "train.batch_size": 20,
        "train.epochs": 4, "train.grid_size": 4, "train.tensorboard": False}

PATHS = {
    "fused": ("paper-mnist", {}),
    "autograd": ("paper-mnist", {"model.generator_activations": ["sigmoid"]}),
    "bf16": ("paper-mnist", {"model.generator_activations": ["sigmoid"], "train.precision": "bf16"}),
    "alternating": ("paper-mnist", {"train.schedule": "alternating", "train.k_discriminator_steps": 2}),
    "conditional": ("paper-mnist", {"model.conditional": True}),
    "packed": ("paper-mnist", {"model.pack": 2}),
    "top_k": ("paper-mnist", {"train.schedule": "alternating", "train.top_k": 0.5, "train.top_k_decay": 0.9}),
    "ema": ("paper-mnist", {"train.generator_ema": 0.99}),
    "adam": ("paper-mnist", {"train.optimizer": "adam", "train.lr": 0.001}),
    "conv": ("paper-mnist", {"model.architecture": "conv", "model.generator_hidden": [16, 64],
                             "model.generator_activations": ["relu", "sigmoid"], "model.generator_conv_channels": 4,
                             "model.generator_output": "linear", "model.generator_output_bias": "zero",
                             "model.discriminator_conv_units": [4, 5], "model.discriminator_conv_kernels": [3, 3],
                             "model.discriminator_conv_pads": [1, 1], "model.discriminator_pool_shapes": [2, 2],
                             "model.discriminator_pool_strides": [2, 2], "model.discriminator_units": [8]}),
    "penalty": ("paper-mnist", {"train.schedule": "alternating", "train.gradient_penalty": 1.0}),
}


def digest(payload: dict) -> str:
    h = hashlib.sha256()
    for key in ("generator", "discriminator", "generator_average", "opt_g", "opt_d", "rng"):
        value = payload.get(key)
        for name, t in sorted(_tensors(value, key)):
            h.update(name.encode())
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _tensors(value, prefix):
    if isinstance(value, torch.Tensor):
        yield prefix, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _tensors(v, f"{prefix}.{k}")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from _tensors(v, f"{prefix}.{i}")


def run_path(preset: str, overrides: dict, out: Path) -> str:
    config = make_config(preset, {**TINY, **overrides, "train.epochs": 2})
    train(config, out)
    train(make_config(preset, {**TINY, **overrides}), out, resume=True)
    load_run(out)                                        # a finished run loads for sampling
    return digest(torch.load(out / "checkpoints" / "last.pt", weights_only=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", nargs="*", default=list(PATHS), choices=list(PATHS))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print(json.dumps({p: run_path(*PATHS[p], Path(tmp) / p) for p in args.paths}, indent=1))


if __name__ == "__main__":
    main()
