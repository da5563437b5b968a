"""The config schema: frozen dataclasses with the paper's MNIST setup as defaults, and their checks.

A `Config` has three sections: `data`, `model`, `train`. The defaults are the original MNIST run
(goodfeli/adversarial `mnist.yaml`; docs/design.md). Unknown keys and bad values are `ConfigError`s with a
"did you mean" hint.
"""
from __future__ import annotations

import dataclasses
import difflib
import json
import math
from dataclasses import dataclass, field, fields
from typing import Any

from ..errors import ConfigError


@dataclass(frozen=True)
class DataConfig:
    dataset: str = "mnist"          # mnist | fashion-mnist | mnist-5k | digits | toy1d | cifar10 | tfd | folder
                                    # | grid | ring (2-D mixtures, data/mixtures.py)
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
    # Where the training split lives (training/batches.py, training/streaming.py): memory (one float32 tensor on the
    # run's device) | memmap (folder only: decoded once into a uint8 .npy cache, read a minibatch at a time by a
    # torch DataLoader with `workers` processes, pinned memory on CUDA) | auto (memory unless a folder's float32
    # training set would take more than a quarter of the RAM, or of the GPU's memory).
    storage: str = "auto"
    workers: int = 2                 # memmap: DataLoader worker processes that read ahead (0: read in the loop)


@dataclass(frozen=True)
class ModelConfig:
    noise_dim: int = 100
    noise_prior: str = "uniform"                    # uniform on [-sqrt(3), sqrt(3)] (unit variance) | gaussian
    generator_hidden: tuple[int, ...] = (1200, 1200)  # ReLU layers; output is sigmoid
    generator_init_range: float = 0.05              # weights uniform in +-range, biases 0
    generator_output_bias: str = "marginals"        # marginals: logit of the data's mean pixel | zero
    generator_output: str = "sigmoid"               # sigmoid (pixels in (0, 1)) | linear (any real value)
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
    architecture: str = "mlp"                       # mlp | conv (deconvolutional G, maxout convolutional D)
    generator_activations: tuple[str, ...] = ("relu",)  # per hidden layer of G (one value: all): relu | sigmoid
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


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 100
    max_steps: int | None = None          # stop after this many generator updates (None: run all epochs)
    batch_size: int = 100                 # m in Algorithm 1
    schedule: str = "simultaneous"        # simultaneous: D and G updated from one minibatch (the original code)
                                          # alternating: k D steps, then one G step (Algorithm 1 as printed)
    k_discriminator_steps: int = 1
    generator_loss: str = "non-saturating"  # non-saturating: max log D(G(z)) | minimax: min log(1 - D(G(z)))
    optimizer: str = "sgd"                # sgd (pylearn2 momentum) | adam
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
    precision: str = "fp32"
    sample_every_epochs: int = 1          # write samples/epoch_XXXX.png
    checkpoint_every_epochs: int = 1      # write checkpoints/last.pt
    sample_every_steps: int = 0           # also write samples/step_XXXXXXXX.png every N steps (0: off)
    checkpoint_every_steps: int = 0       # also checkpoint every N steps (0: off)
    log_every_steps: int = 0              # also log a metrics line every N steps (0: once per epoch)
    grid_size: int = 10                   # sample grids are grid_size x grid_size
    tensorboard: bool = True              # write TensorBoard event files into the run directory
    # Mode coverage in the epoch lines of metrics.jsonl (training/coverage_monitor.py): every N epochs (0: off). grid | ring:
    # modes captured, high-quality fraction, reverse KL; labelled images: classes captured by the package's
    # classifier (trained first if not cached: opt-in). coverage_samples 0: 2,500 (grid, ring) or 500 (images).
    coverage_every_epochs: int = 0
    coverage_samples: int = 0
    # Sample from a moving average of G's weights (training/averaging.py): each G update moves the average by
    # 1 - generator_ema (after a warm-up). 0: off, samples come from G itself. Training is unchanged either way.
    generator_ema: float = 0.0
    # Zero-centred gradient penalty on D at the data (R1, Mescheder et al. 2018): D's loss gains
    # gradient_penalty / 2 * E_x ||d logit / dx||^2 (x: a packed row when packed). 0: off. Alternating schedule only.
    gradient_penalty: float = 0.0
    # Top-k training (Sinha et al. 2020, "Top-k Training of GANs"): G's update keeps only the fraction of its samples
    # that D rates highest, all of them in the first epoch, then top_k_decay times less per epoch, down to top_k.
    # 1: off. Alternating schedule only; packed, it keeps packed rows; data parallel, each rank keeps its own share.
    top_k: float = 1.0
    top_k_decay: float = 0.99


@dataclass(frozen=True)
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def validate(self) -> "Config":
        _validate(self)
        return self


_SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}


def from_dict(data: dict[str, Any]) -> Config:
    """Build a Config from a nested dict (e.g. a run's config.json). Unknown keys are errors."""
    if not isinstance(data, dict):
        raise ConfigError("a config must be a JSON object with sections data, model, train")
    _check_keys(data, _SECTIONS, "config")
    sections = {}
    for name, cls in _SECTIONS.items():
        values = data.get(name, {})
        if not isinstance(values, dict):
            raise ConfigError(f"config section '{name}' must be an object, got {values!r}")
        _check_keys(values, _field_names(cls), f"config section '{name}'")
        sections[name] = cls(**{k: _coerce(cls, k, v) for k, v in values.items()})
    return Config(**sections).validate()



def _parse_value(raw: str) -> Any:
    """JSON where it parses (numbers, true/false/null, lists), else the plain string."""
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def _coerce(cls: type, name: str, value: Any) -> Any:
    """Turn JSON values into the field's type (lists into tuples, "1200,1200" into (1200, 1200))."""
    default = next(f for f in fields(cls) if f.name == name)
    sample = default.default if default.default is not dataclasses.MISSING else None
    where = f"{cls.__name__.replace('Config', '').lower()}.{name}"
    if isinstance(sample, tuple):
        if isinstance(value, str):
            value = [_parse_value(v.strip()) for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            value = [value]
        kind = type(sample[0]) if sample else int
        try:
            return tuple(kind(v) for v in value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where} must be a list of {kind.__name__}, got {value!r}") from None
    if value is None:
        return None
    if isinstance(sample, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
        return value
    if isinstance(sample, float) or (sample is None and isinstance(value, float)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        return float(value)
    if isinstance(sample, int) or name in ("max_steps", "mixture_seed"):
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ConfigError(f"{where} must be a whole number, got {value!r}")
        return value
    if not isinstance(value, str):
        raise ConfigError(f"{where} must be a string, got {value!r}")
    return value


_CHOICES = {
    ("model", "noise_prior"): ("uniform", "gaussian"),
    ("model", "generator_output_bias"): ("marginals", "zero"),
    ("model", "generator_output"): ("sigmoid", "linear"),
    ("train", "schedule"): ("simultaneous", "alternating"),
    ("train", "generator_loss"): ("non-saturating", "minimax"),
    ("train", "optimizer"): ("sgd", "adam"),
    ("train", "precision"): ("fp32", "bf16", "fp16"),
    ("model", "architecture"): ("mlp", "conv"),
    ("data", "storage"): ("auto", "memory", "memmap"),
}


def _validate(config: Config) -> None:
    from ..data.registry import DATASETS

    if config.data.dataset not in DATASETS:
        raise ConfigError(f"data.dataset is '{config.data.dataset}'",
                          _did_you_mean(config.data.dataset, DATASETS) or f"choose one of {', '.join(DATASETS)}")
    for (section, name), choices in _CHOICES.items():
        value = getattr(getattr(config, section), name)
        if value not in choices:
            raise ConfigError(f"{section}.{name} is '{value}'",
                              _did_you_mean(value, choices) or f"choose one of {', '.join(choices)}")
    m, t = config.model, config.train
    _validate_numbers(config)
    if t.device not in ("cpu", "cuda", "mps", "auto") and not (t.device.startswith("cuda:") and t.device[5:].isdigit()):
        raise ConfigError(f"train.device is '{t.device}'", "choose one of cpu, cuda, cuda:N, mps, auto")
    positive = {"model.noise_dim": m.noise_dim, "model.discriminator_pieces": m.discriminator_pieces,
                "train.epochs": t.epochs, "train.batch_size": t.batch_size,
                "train.k_discriminator_steps": t.k_discriminator_steps, "train.lr": t.lr,
                "train.grid_size": t.grid_size, "model.pack": m.pack}
    for key, value in positive.items():
        if value <= 0:
            raise ConfigError(f"{key} must be positive, got {value}")
    for key, prob in {"model.discriminator_input_include_prob": m.discriminator_input_include_prob,
                      "model.discriminator_hidden_include_prob": m.discriminator_hidden_include_prob}.items():
        if not 0.0 < prob <= 1.0:
            raise ConfigError(f"{key} must be in (0, 1], got {prob}")
    if any(w <= 0 for w in m.generator_hidden + m.discriminator_units):
        raise ConfigError("layer widths must be positive")
    if t.lr_decay < 1.0:
        raise ConfigError(f"train.lr_decay must be >= 1 (1 = no decay), got {t.lr_decay}")
    if t.lr_decay_after < 0:
        raise ConfigError(f"train.lr_decay_after must be >= 0 (0: decay from the first update), got {t.lr_decay_after}")
    if t.max_steps is not None and t.max_steps <= 0:
        raise ConfigError(f"train.max_steps must be positive or null, got {t.max_steps}")
    if t.schedule == "simultaneous" and t.k_discriminator_steps != 1:
        raise ConfigError("train.schedule=simultaneous updates D and G from one minibatch, so k must be 1",
                          "use --set train.schedule=alternating for k > 1")
    if m.conditional and (m.architecture != "mlp" or set(m.generator_activations) != {"relu"}
                          or m.generator_output_init_range):
        raise ConfigError("model.conditional is implemented for the MLP networks (architecture mlp, relu hidden "
                          "layers in G)", "drop --conditional, or use the paper-mnist networks")
    if not 0.0 <= t.generator_ema < 1.0:
        raise ConfigError(f"train.generator_ema must be in [0, 1) (0: off, e.g. 0.999), got {t.generator_ema}")
    if t.gradient_penalty < 0:
        raise ConfigError(f"train.gradient_penalty must be >= 0 (0: off), got {t.gradient_penalty}")
    if t.gradient_penalty and t.schedule != "alternating":
        raise ConfigError("train.gradient_penalty is implemented for the alternating schedule",
                          "add --set train.schedule=alternating")
    if not (0.0 < t.top_k <= 1.0 and 0.0 < t.top_k_decay <= 1.0):
        raise ConfigError(f"train.top_k and train.top_k_decay must be in (0, 1] (top_k 1: off, e.g. 0.5 and 0.99), "
                          f"got {t.top_k} and {t.top_k_decay}")
    if t.top_k < 1.0 and t.schedule != "alternating":
        raise ConfigError("train.top_k is implemented for the alternating schedule",
                          "add --set train.schedule=alternating")
    if t.coverage_every_epochs < 0 or t.coverage_samples < 0:
        raise ConfigError("train.coverage_every_epochs and train.coverage_samples must be >= 0 (0: off / default)")
    if t.batch_size % m.pack:
        raise ConfigError(f"model.pack={m.pack} needs train.batch_size divisible by it, got {t.batch_size}",
                          f"use a batch size that is a multiple of {m.pack}")
    if m.conditional and m.pack > 1:
        raise ConfigError("model.pack > 1 is not implemented for conditional nets", "drop --conditional or pack")
    _validate_images(config)


def _validate_numbers(config: Config) -> None:
    """Every number finite; the optimiser, schedule and interval settings in their ranges."""
    for section in ("data", "model", "train"):
        for f in fields(getattr(config, section)):
            value = getattr(getattr(config, section), f.name)
            values = value if isinstance(value, tuple) else (value,)
            if any(isinstance(v, float) and not math.isfinite(v) for v in values):
                raise ConfigError(f"{section}.{f.name} must be a finite number, got {value!r}")
    m, t = config.model, config.train
    if not m.discriminator_units or not m.generator_hidden:
        raise ConfigError("model.generator_hidden and model.discriminator_units need at least one layer",
                          "e.g. --set model.discriminator_units=240,240")
    unit = {"train.momentum_start": t.momentum_start, "train.momentum_end": t.momentum_end,
            **{f"train.adam_betas[{i}]": b for i, b in enumerate(t.adam_betas)}}
    for key, value in unit.items():
        if not 0.0 <= value < 1.0:
            raise ConfigError(f"{key} must be in [0, 1), got {value}")
    if len(t.adam_betas) != 2 or len(t.momentum_ramp_epochs) != 2 or min(t.momentum_ramp_epochs) < 0:
        raise ConfigError(f"train.adam_betas {list(t.adam_betas)} and train.momentum_ramp_epochs "
                          f"{list(t.momentum_ramp_epochs)} need two values each", "e.g. 0.5,0.999 and 1,250 (>= 0)")
    at_least_one = {"train.sample_every_epochs": t.sample_every_epochs,
                    "train.checkpoint_every_epochs": t.checkpoint_every_epochs}
    non_negative = {"train.lr_min": t.lr_min, "train.log_every_steps": t.log_every_steps, "train.seed": t.seed,
                    "train.sample_every_steps": t.sample_every_steps,
                    "train.checkpoint_every_steps": t.checkpoint_every_steps,
                    "model.generator_init_range": m.generator_init_range,
                    "model.discriminator_init_range": m.discriminator_init_range,
                    "model.discriminator_input_scale": m.discriminator_input_scale,
                    "model.discriminator_hidden_scale": m.discriminator_hidden_scale,
                    "data.toy_size": config.data.toy_size}
    for key, value in at_least_one.items():
        if value < 1:
            raise ConfigError(f"{key} must be at least 1, got {value}")
    for key, value in non_negative.items():
        if value < 0:
            raise ConfigError(f"{key} must be >= 0, got {value}")


def _validate_images(config: Config) -> None:
    """The image-source and CIFAR-10 / TFD network settings."""
    d, m = config.data, config.model
    if d.storage == "memmap" and d.dataset != "folder":
        raise ConfigError(f"data.storage=memmap reads a decoded image folder; data.dataset is {d.dataset}",
                          "use data.storage=memory (or auto), or --dataset folder --data-dir DIR")
    if d.workers < 0:
        raise ConfigError(f"data.workers must be >= 0, got {d.workers}", "0 reads the minibatches in the loop")
    if not 0 <= d.fold < 5:
        raise ConfigError(f"data.fold must be 0..4 (TFD's five folds), got {d.fold}")
    if d.image_size < 0 or d.channels not in (0, 1, 3) or d.contrast_normalize < 0:
        raise ConfigError(f"data.image_size {d.image_size}, data.channels {d.channels}, data.contrast_normalize "
                          f"{d.contrast_normalize}", "image_size >= 0, channels 0 | 1 | 3, contrast_normalize >= 0")
    if d.contrast_normalize > 0 and (m.generator_output == "sigmoid" or m.generator_output_bias == "marginals"):
        raise ConfigError("contrast-normalised data is not in [0, 1]: a sigmoid output or a bias from the pixel "
                          "marginals does not fit it", "use --set model.generator_output=linear "
                          "--set model.generator_output_bias=zero")
    if len(m.generator_activations) not in (1, len(m.generator_hidden)) or \
            any(a not in ("relu", "sigmoid") for a in m.generator_activations):
        raise ConfigError(f"model.generator_activations is {list(m.generator_activations)}",
                          "give relu or sigmoid, once for all hidden layers or once per layer")
    conv = (m.discriminator_conv_units, m.discriminator_conv_kernels, m.discriminator_conv_pads,
            m.discriminator_pool_shapes, m.discriminator_pool_strides)
    if m.architecture == "conv" and (len({len(v) for v in conv}) != 1 or not conv[0]):
        raise ConfigError("model.discriminator_conv_units, _kernels, _pads, pool_shapes and pool_strides need one "
                          "value per convolution layer", f"got {', '.join(str(list(v)) for v in conv)}")
    if m.architecture == "conv" and (min(m.generator_conv_channels, m.generator_conv_kernel, m.generator_conv_stride,
                                         m.discriminator_conv_pieces, *conv[0], *conv[1], *conv[3], *conv[4]) <= 0
                                     or min(conv[2]) < 0 or m.generator_output_init_range < 0):
        raise ConfigError("convolution sizes, strides and pieces must be positive (pads >= 0)")


def _field_names(cls: type) -> dict[str, Any]:
    return {f.name: f for f in fields(cls)}


def _check_keys(given: dict[str, Any], known: dict[str, Any], where: str) -> None:
    for key in given:
        if key not in known:
            hint = _did_you_mean(key, known) or f"known keys: {', '.join(sorted(known))}"
            raise ConfigError(f"unknown key '{key}' in {where}", hint)


def _did_you_mean(word: str, choices: Any) -> str | None:
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None
