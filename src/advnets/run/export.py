"""Exporting a run's generator G alone (TorchScript, ONNX or safetensors) and writing samples as PNG files.

Each export writes two files: the model (`OUT`) and `OUT.json`, which says what G expects and returns: the noise
dimension and prior and how to draw it, the classes of a conditional run and how labels are passed, the output
shape (C, H, W) and value range. With these a user can sample G without advnets:

    import torch, math
    g = torch.jit.load("generator.pt")                           # only torch is needed
    z = torch.rand(16, 100) * 2 * math.sqrt(3) - math.sqrt(3)    # noise_prior "uniform" (see the JSON)
    x = g(z)                                                     # (16, 1, 28, 28) in [0, 1]

Drawing z with `torch.Generator().manual_seed(seed)` as in the JSON's `noise_prior.draw` gives the same z, and so
the same images, as `advnets.load_run(RUN).sample(n, seed)` of an unconditional run.
"""
from __future__ import annotations

import copy
import dataclasses
import importlib
import json
import logging
import warnings
from pathlib import Path

import torch
from torch import nn

from .. import __version__
from ..config import from_dict
from ..errors import AdvnetsError
from ..fileio import atomic_open, write_json
from ..models import build_models
from .layout import check_output

FORMATS = ("torchscript", "onnx", "safetensors")
SUFFIXES = {"torchscript": ".pt", "onnx": ".onnx", "safetensors": ".safetensors"}
_PRIOR_DRAW = {
    "uniform": ("uniform on [-sqrt(3), sqrt(3)] per dimension (zero mean, unit variance)",
                "z = torch.rand(n, noise_dim, generator=g) * 2 * math.sqrt(3) - math.sqrt(3)"),
    "gaussian": ("standard normal per dimension",
                 "z = torch.randn(n, noise_dim, generator=g)"),
}


class ExportError(AdvnetsError):
    """An export that cannot be written: an unknown format or a missing optional package."""


def export_path(out_path: str | Path, fmt: str) -> Path:
    """Where `export_generator` writes: `out_path` itself, or `generator<suffix>` inside it when it is a
    directory (an existing one, or a path written with a trailing slash)."""
    _check_format(fmt)
    text = str(out_path)
    out = Path(out_path)
    if out.is_dir() or text.endswith(("/", "\\")):
        return out / f"generator{SUFFIXES[fmt]}"
    return out


def export_generator(run, out_path: str | Path, fmt: str) -> list[Path]:
    """Write the generator of `run` (an `advnets.run.LoadedRun`) in format `fmt` (torchscript | onnx |
    safetensors) to `out_path`, and its description to `<out_path>.json`. Returns [model path, JSON path].

    The exported G runs on CPU in float32: forward(z) for an unconditional run, forward(z, labels) with
    labels (B,) int64 class indices for a conditional one; it returns (B, C, H, W)."""
    path = export_path(out_path, fmt)
    meta_path = path.with_name(path.name + ".json")
    check_output(path)
    check_output(meta_path)
    # frozen: the exported G's outputs need no autograd (a traced G would otherwise give tensors that require grad)
    generator = copy.deepcopy(run.generator).to("cpu", torch.float32).eval().requires_grad_(False)
    example = _example_inputs(run)
    if fmt == "torchscript":
        _write_torchscript(generator, example, path)
    elif fmt == "onnx":
        _write_onnx(generator, example, path)
    else:
        _write_safetensors(generator, path)
    meta = describe_generator(run, fmt, path.name)
    write_json(meta_path, meta)
    return [path, meta_path]


def describe_generator(run, fmt: str, model_file: str) -> dict:
    """What the exported G expects and returns, as a JSON-able dict (the content of `OUT.json`)."""
    m, d = run.config.model, run.config.data
    prior, draw = _PRIOR_DRAW[m.noise_prior]
    inputs = [{"name": "z", "dtype": "float32", "shape": ["batch", m.noise_dim]}]
    if run.num_classes:
        inputs.append({"name": "labels", "dtype": "int64", "shape": ["batch"],
                       "meaning": f"class index in 0..{run.num_classes - 1} for each z (G(z, c), paper section 7)"})
    if m.generator_output == "sigmoid":
        value_range = {"low": 0.0, "high": 1.0, "meaning": "pixel intensities in [0, 1] (sigmoid output)"}
    elif d.contrast_normalize:
        value_range = {"low": None, "high": None,
                       "meaning": f"any real value (linear output): images in the space of globally contrast "
                                  f"normalised data (scale {d.contrast_normalize}); to view one, map it to "
                                  f"[0, 1] by x / (2 * max|x|) + 1/2 per image"}
    else:
        value_range = {"low": None, "high": None,
                       "meaning": "any real value (linear output); the training data was in [0, 1], so clip to "
                                  "[0, 1] to view"}
    meta = {
        "format": fmt,
        "file": model_file,
        "advnets_version": __version__,
        "run": str(run.run_dir),
        "epoch": run.epoch,
        "step": run.step,
        "dataset": d.dataset,
        "noise_dim": m.noise_dim,
        "noise_prior": {"name": m.noise_prior, "distribution": prior,
                        "draw": f"import math, torch; g = torch.Generator().manual_seed(seed); {draw}"},
        "num_classes": run.num_classes,
        "labels": (f"forward(z, labels): labels (batch,) int64 class indices in 0..{run.num_classes - 1}"
                   if run.num_classes else "none: forward(z)"),
        "inputs": inputs,
        "output": {"name": "x", "dtype": "float32", "shape": ["batch", *run.image_shape],
                   "image_shape": list(run.image_shape), "range": value_range},
    }
    if fmt == "safetensors":
        meta["architecture"] = {"config": _jsonable(run.config), "image_shape": list(run.image_shape),
                                "num_classes": run.num_classes,
                                "load": "advnets.run.export.load_safetensors_generator(PATH)"}
    return meta


def load_safetensors_generator(path: str | Path) -> nn.Module:
    """Rebuild a generator exported as safetensors (needs advnets and `safetensors`), in evaluation mode."""
    safetensors_torch = _require("safetensors.torch", "safetensors")
    path = Path(path)
    meta_path = path.with_name(path.name + ".json")
    try:
        arch = json.loads(meta_path.read_text())["architecture"]
    except (OSError, KeyError, json.JSONDecodeError) as exc:
        raise ExportError(f"{meta_path} is missing or not an advnets safetensors description ({exc})",
                          "keep the .json written beside the .safetensors file") from None
    model = from_dict(arch["config"]).model
    g, _ = build_models(model, tuple(arch["image_shape"]), None, num_classes=int(arch["num_classes"]))
    g.load_state_dict(safetensors_torch.load_file(str(path)))
    return g.eval()


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}", f"use one of {', '.join(FORMATS)}")


def _example_inputs(run) -> tuple[torch.Tensor, ...]:
    z = torch.zeros(2, run.config.model.noise_dim)
    return (z, torch.zeros(2, dtype=torch.int64)) if run.num_classes else (z,)


def _write_torchscript(generator: nn.Module, example: tuple[torch.Tensor, ...], path: Path) -> None:
    # Tracing records the operations of one call; G has no data-dependent control flow, so the trace is G. It
    # keeps the batch dimension free because G reshapes with view(-1, ...). PyTorch marks torch.jit deprecated
    # (in favour of torch.export, whose files need a matching PyTorch to load); TorchScript is still the format
    # that loads with `torch.jit.load` alone in any recent PyTorch, so its warnings are not passed on.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with torch.no_grad():
            traced = torch.jit.trace(generator, example, check_trace=False)
        with atomic_open(path) as f:
            torch.jit.save(traced, f)


def _write_onnx(generator: nn.Module, example: tuple[torch.Tensor, ...], path: Path) -> None:
    _require("onnx", "onnx")
    _require("onnxscript", "onnxscript")
    batch = torch.export.Dim("batch", min=1)
    names = ["z", "labels"][:len(example)]
    # The exporter logs that torchvision's operators are skipped and warns about its own internals: neither
    # concerns G, so they are kept out of the user's terminal.
    quiet = logging.getLogger("torch.onnx")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", UserWarning)      # "the axis name batch will not be used" (z, labels)
            program = torch.onnx.export(generator, example, None, dynamo=True, verbose=False, input_names=names,
                                        output_names=["x"], dynamic_shapes=tuple({0: batch} for _ in example))
    finally:
        quiet.setLevel(level)
    data = program.model_proto.SerializeToString()
    with atomic_open(path) as f:
        f.write(data)


def _write_safetensors(generator: nn.Module, path: Path) -> None:
    safetensors_torch = _require("safetensors.torch", "safetensors")
    state = {k: v.detach().contiguous() for k, v in generator.state_dict().items()}
    data = safetensors_torch.save(state, metadata={"format": "pt"})
    with atomic_open(path) as f:
        f.write(data)


def _require(module: str, package: str):
    """Import an optional package, or say how to install it (onnx and onnxscript: the `export` extra)."""
    try:
        return importlib.import_module(module)
    except ImportError:
        hint = "pip install 'advnets[export]'" if package.startswith("onnx") else f"pip install {package}"
        raise ExportError(f"this export needs the Python package {package!r}, which is not installed",
                          hint) from None


def _jsonable(obj):
    return json.loads(json.dumps(dataclasses.asdict(obj)))

