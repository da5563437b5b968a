"""Run by tests/training/test_distributed.py under `torchrun --nproc_per_node=2` (Gloo, CPU): trains the cases the
test names, one after the other in one process group, into OUT/<case>. Not a test module itself.

    python -m torch.distributed.run --nproc_per_node=2 tests/training/dist_worker.py OUT FOLDER case [case ...]

FOLDER is the image folder of the `memmap` case (FOLDER_SIZE 8x8 PNGs), streamed from its decoded cache under
$ADVNETS_DATA. A case is a key of CASES (train to STEPS steps), `half-<key>` (train to STEPS // 2 steps), `resume-<key>` (resume
OUT/one-<key>, a 1-process run, to STEPS steps) or `nan` (rank 1's images are NaN; each rank writes the error it
stopped with).
"""
import json
import os
import sys
from pathlib import Path

import torch

from advnets.config import make_config
from advnets.errors import AdvnetsError
from advnets.training import Trainer
from advnets.training.distributed import Dist
from tests.conftest import TINY

STEPS = 20
CASES = {
    "fused": {},
    "autograd": {"model.generator_activations": ["sigmoid"]},
    # (SGD: Adam's first steps are lr * g / (|g| + 1e-8), which turns rounding in gradients near 1e-8 into
    # visible differences -- 1-process vs 2-process Adam runs drift apart by 1e-3 of the step after one update)
    "alternating": {"train.schedule": "alternating", "train.k_discriminator_steps": 2,
                    "train.generator_loss": "minimax"},
    "conditional": {"model.conditional": True},
    # an image folder read by DataLoader workers from its uint8 cache; 140 training images, 7 iterations an epoch,
    # so STEPS // 2 stops mid-epoch. The 1-process reference holds it in memory (storage="memory").
    "memmap": {"data.dataset": "folder", "data.storage": "memmap", "data.workers": 1, "data.image_size": 8,
               "train.epochs": 10},
}
FOLDER_SIZE = 156


def config(case: str, steps: int = STEPS, folder: Path | None = None, storage: str | None = None):
    """The config of `case`; `folder`: the memmap case's image folder; `storage` replaces data.storage."""
    extra = {"data.data_dir": str(folder)} if CASES[case].get("data.dataset") == "folder" else {}
    if storage is not None:
        extra["data.storage"] = storage
    return make_config(overrides={**TINY, "train.lr": 0.5, "train.device": "cpu",
                                  "model.discriminator_init_range": 0.05, "train.log_every_steps": 5, **CASES[case],
                                  **extra, "train.max_steps": steps})


def main(out: Path, folder: Path, cases: list[str]) -> None:
    torch.set_num_threads(1)
    dist = Dist.from_env(torch.device("cpu"))
    try:
        _run(out, folder, cases, dist)
    except BaseException:
        dist.close(barrier=False)
        raise
    dist.close()
    # destroy_process_group must have freed the group and joined its threads (distributed.py, Dist.close)
    threads = [Path(f"/proc/self/task/{t}/comm").read_text().strip() for t in os.listdir("/proc/self/task")] \
        if Path("/proc/self/task").exists() else []
    (out / f"threads_rank{dist.rank}.json").write_text(json.dumps({
        "dynamo imported": "torch._dynamo" in sys.modules, "gloo threads": [t for t in threads if "gloo" in t]}))


def _run(out: Path, folder: Path, cases: list[str], dist: Dist) -> None:
    for case in cases:
        kind, _, key = case.partition("-")
        if kind == "half":
            Trainer(config(key, STEPS // 2, folder), out / case, dist=dist).run()
        elif kind == "resume":
            Trainer(config(key, folder=folder), out / f"one-{key}", resume=True, dist=dist).run()
        elif case == "nan":
            _nan_case(out, dist)
        else:
            Trainer(config(case, folder=folder), out / case, dist=dist).run()


def _nan_case(out: Path, dist: Dist) -> None:
    from advnets.data import load_split

    images = torch.as_tensor(load_split("digits", "train").images)
    if dist.rank == 1:
        images = torch.full_like(images, float("nan"))
    cfg = make_config(overrides={**TINY, "train.device": "cpu", "model.generator_output_bias": "zero",
                                 "train.max_steps": 5})
    try:
        Trainer(cfg, None, train_images=images, dist=dist).run()
        message = "no error"
    except AdvnetsError as exc:
        message = f"{type(exc).__name__}: {exc}"
    (out / f"nan_rank{dist.rank}.txt").write_text(message)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:])
