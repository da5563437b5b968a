"""Choosing the torch device a run computes on."""
from __future__ import annotations

import torch

from .errors import ConfigError


def resolve_device(name: str) -> torch.device:
    """cpu | cuda | cuda:N | mps | auto (cuda if present, then mps, then cpu). A device this machine does not have
    is a ConfigError naming what it has."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        _check_cuda(name)
    elif name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError("device 'mps' was asked for but it is not available", "use --device cpu or auto")
    elif name not in ("cpu", "mps"):
        raise ConfigError(f"unknown device '{name}'", "use cpu, cuda, cuda:N, mps or auto")
    return torch.device(name)


def _check_cuda(name: str) -> None:
    """`name` (cuda or cuda:N) names a GPU PyTorch sees."""
    index = name.partition(":")[2]
    if index and not index.isdigit():
        raise ConfigError(f"unknown device '{name}'", "use cpu, cuda, cuda:N, mps or auto")
    if not torch.cuda.is_available():
        raise ConfigError(f"device '{name}' was asked for but PyTorch sees no CUDA GPU", "use --device cpu or auto")
    count = torch.cuda.device_count()
    if index and int(index) >= count:
        raise ConfigError(f"device '{name}' was asked for but PyTorch sees {count} CUDA GPU{'s' if count > 1 else ''}"
                          f" (cuda:0{f' .. cuda:{count - 1}' if count > 1 else ''})",
                          "use --device cuda, auto, or a GPU number below the count (CUDA_VISIBLE_DEVICES may hide "
                          "some)")
