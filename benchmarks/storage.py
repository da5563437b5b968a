"""Training speed from the two stores of the training split (training/storage.py): memory (one tensor on the device)
against memmap (the folder decoded once into a uint8 .npy cache, streamed by a DataLoader) with 0 and 2 workers,
measured in the same process, the stores taking turns `--rounds` times so that a busy machine slows all alike.

    python benchmarks/storage.py [--images 2000] [--size 28] [--steps 200] [--rounds 3] [--device auto]

Writes a folder of random grey PNGs (a temporary directory, and the cache there too: $ADVNETS_DATA is set to it),
decodes it once (the first memmap run builds the cache; not timed), then times `--steps` iterations of the
paper-mnist preset (the paper's MLP G and maxout D, batch 100) from each store, the workers' start included.
Prints one JSON object: steps/s per store (the median over the rounds, and every round), the ratio to memory,
and whether the final parameters of every store equal memory's (they must: the same rows, the same values).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--images", type=int, default=2000)
    p.add_argument("--size", type=int, default=28)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--device", default="auto")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["ADVNETS_DATA"] = str(Path(tmp) / "cache")
        import numpy as np
        import torch
        from PIL import Image

        from advnets.config import make_config
        from advnets.training import Trainer

        folder = Path(tmp) / "images"
        folder.mkdir()
        rng = np.random.default_rng(0)
        for i in range(args.images):
            Image.fromarray(rng.integers(0, 256, (args.size, args.size), dtype=np.uint8), "L").save(
                folder / f"{i:05d}.png")
        stores = {"memory": ("memory", 0), "memmap, 0 workers": ("memmap", 0), "memmap, 2 workers": ("memmap", 2)}
        rates = {name: [] for name in stores}
        final = {}
        for round_ in range(args.rounds + 1):                       # round 0: decoding and caches, not timed
            for name, (storage, workers) in stores.items():
                config = make_config("paper-mnist", {
                    "data.dataset": "folder", "data.data_dir": str(folder), "data.image_size": args.size,
                    "data.storage": storage, "data.workers": workers, "train.device": args.device,
                    "train.max_steps": args.steps if round_ else 1, "train.tensorboard": False})
                with Trainer(config, None) as trainer:
                    started = time.perf_counter()
                    trainer.run()
                    if trainer.device.type == "cuda":
                        torch.cuda.synchronize()
                    seconds = time.perf_counter() - started
                    final[name] = [q.detach().cpu() for net in (trainer.generator, trainer.discriminator)
                                   for q in net.parameters()]
                if round_:
                    rates[name].append(round(args.steps / seconds, 2))
        memory = statistics.median(rates["memory"])
        print(json.dumps({
            "images": args.images, "size": args.size, "steps": args.steps, "device": str(trainer.device),
            "threads": torch.get_num_threads(),
            "steps_per_s": {name: statistics.median(r) for name, r in rates.items()},
            "rounds": rates,
            "ratio_to_memory": {name: round(statistics.median(r) / memory, 3) for name, r in rates.items()},
            "same_parameters_as_memory": {name: all(torch.equal(a, b) for a, b in zip(final["memory"], ps))
                                          for name, ps in final.items()}}, indent=1))


if __name__ == "__main__":
    main()
