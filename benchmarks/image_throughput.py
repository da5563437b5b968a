"""Training throughput of the CIFAR-10 / TFD presets (convolutional or sigmoid-hidden networks: the autograd step with
one backward pass through D, training/step_autograd.py), against the machine's matmul / convolution bound. Run through `train_throughput.py --preset
NAME`, or alone:

    python benchmarks/image_throughput.py [--preset paper-cifar10-conv] [--steps 5] [--rounds 3] [--threads N]

Prints one JSON object:
  steps_per_s, samples_per_s   Algorithm 1 iterations (simultaneous schedule) of the real trainer, and training
                               examples per second (batch_size x steps_per_s; each also costs one generated sample)
  flops_per_step               FLOPs of the convolutions and matrix products one iteration needs at least, counted
                               from the layer shapes (listed under "ops"): G forward; D forward on data + samples;
                               D's weight gradients; D's input gradients (layer 0 on the samples only); G's weight
                               and input gradients. Elementwise work (activations, maxout, pooling, dropout) is not
                               counted.
  bound_gflops                 this machine's GFLOP/s on exactly those operations (each timed alone with PyTorch's
                               kernels in this run, best of the rounds)
  bound_steps_per_s            no iteration can be faster than this on these kernels
  fraction_of_bound            steps_per_s / bound_steps_per_s
  fraction_of_bound_paired     the estimate train_throughput.py uses: in each round, --steps passes over all the
                               operations and then --steps iterations, each side's mean; the median over the rounds
                               of bound / step (fraction_of_bound_paired_rounds: each round's). A pass runs the
                               operations back to back, not each alone and hot, so this bound is looser
  bound_channels_last_ms_per_step, fraction_of_channels_last_bound
                               the same bound with each convolution timed in the faster of NCHW and channels-last
                               (the layout D runs in): a tighter bound
  keep_freed_memory, minor_page_faults_per_step
                               whether glibc keeps freed memory for reuse, as `advnets train` sets it
                               (advnets/memory.py; --system-malloc: not), and the page faults a step took (median of
                               the rounds)
The data are random images of the preset's shape (speed does not depend on pixel values).
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from advnets.config import make_config
from advnets.memory import keep_freed_memory
from advnets.models import ConvGenerator, MaxoutConvDiscriminator
from advnets.training import Trainer

# modules beside this script (its directory is on sys.path when it runs)
from timing import time_steps

IMAGE_SHAPES = {"cifar10": (3, 32, 32), "tfd": (1, 48, 48)}
_conv_backward = torch.ops.aten.convolution_backward


def _mm(name, rows, inner, cols) -> dict:
    return {"name": f"{name}: {rows}x{inner} @ {inner}x{cols}", "flops": 2 * rows * inner * cols,
            "shapes": ("mm", rows, inner, cols)}


def _conv(name, batch, in_shape, weight, padding, stride, transposed, which) -> dict:
    c, h, w = in_shape
    if transposed:                         # every input value scatters into k x k x out_channels outputs
        flops = 2 * batch * c * h * w * weight.shape[1] * weight.shape[2] * weight.shape[3]
    else:
        out_h = (h + 2 * padding - weight.shape[2]) // stride + 1
        out_w = (w + 2 * padding - weight.shape[3]) // stride + 1
        flops = 2 * batch * weight.shape[0] * out_h * out_w * c * weight.shape[2] * weight.shape[3]
    return {"name": f"{name} {which}: batch {batch}, {c}x{h}x{w}, kernel {tuple(weight.shape)}"
                    f"{' transposed' if transposed else ''} stride {stride} pad {padding}",
            "flops": flops, "shapes": ("conv", batch, in_shape, tuple(weight.shape), padding, stride, transposed, which)}


def operations(trainer: Trainer) -> list[dict]:
    """Every convolution and matrix product of one simultaneous iteration, with its FLOPs and a runnable thunk."""
    m, g, d = trainer.config.train.batch_size, trainer.generator, trainer.discriminator
    return _forward_operations(g, d, m) + _backward_operations(g, d, m)


def _forward_operations(g, d, m: int) -> list[dict]:
    """G on m noise vectors, D on the 2m data + samples."""
    ops = [_mm(f"G{i} forward", m, layer.weight.shape[1], layer.weight.shape[0]) for i, layer in enumerate(g.layers)]
    if isinstance(g, ConvGenerator):
        ops.append(_conv("G deconv", m, g.conv_shape, g.deconv.weight, 0, g.deconv.stride[0], True, "forward"))
    if isinstance(d, MaxoutConvDiscriminator):
        ops += [_conv(f"D conv{i}", 2 * m, d.input_shapes[i], c.weight, c.padding[0], 1, False, "forward")
                for i, c in enumerate(d.convs)]
    return ops + [_mm(f"D dense{i} forward", 2 * m, layer.weight.shape[1], layer.weight.shape[0])
                  for i, layer in enumerate([*d.hidden, d.output])]


def _backward_operations(g, d, m: int) -> list[dict]:
    """Through D: weight gradients on 2m, input gradients on 2m (the first layer: the m samples only); through G."""
    ops = []
    for i, layer in reversed(list(enumerate([*d.hidden, d.output]))):
        out_f, in_f = layer.weight.shape
        first = i == 0 and not isinstance(d, MaxoutConvDiscriminator)
        ops += [_mm(f"D dense{i} weight grad", out_f, 2 * m, in_f),
                _mm(f"D dense{i} input grad", m if first else 2 * m, out_f, in_f)]
    for i, c in reversed(list(enumerate(d.convs)) if isinstance(d, MaxoutConvDiscriminator) else []):
        ops += [_conv(f"D conv{i}", 2 * m, d.input_shapes[i], c.weight, c.padding[0], 1, False, "weight grad"),
                _conv(f"D conv{i}", m if i == 0 else 2 * m, d.input_shapes[i], c.weight, c.padding[0], 1, False,
                      "input grad")]
    if isinstance(g, ConvGenerator):
        ops += [_conv("G deconv", m, g.conv_shape, g.deconv.weight, 0, g.deconv.stride[0], True, which)
                for which in ("weight grad", "input grad")]
    for i, layer in reversed(list(enumerate(g.layers))):
        out_f, in_f = layer.weight.shape
        ops.append(_mm(f"G{i} weight grad", out_f, m, in_f))
        if i > 0:
            ops.append(_mm(f"G{i} input grad", m, out_f, in_f))
    return ops


def _thunk(shapes, layout=torch.contiguous_format):
    """A function that runs one operation on random tensors of its shapes (made once, here); convolutions' tensors
    stored in `layout` (torch.channels_last: the layout the convolutional D runs in)."""
    if shapes[0] == "mm":
        _, rows, inner, cols = shapes
        a, b, out = torch.rand(rows, inner), torch.rand(inner, cols), torch.empty(rows, cols)
        return lambda: torch.mm(a, b, out=out)
    _, batch, (c, h, w), wshape, pad, stride, transposed, which = shapes
    x = torch.rand(batch, c, h, w).contiguous(memory_format=layout)
    weight = torch.rand(wshape).contiguous(memory_format=layout)
    run = F.conv_transpose2d if transposed else F.conv2d
    y = run(x, weight, stride=stride, padding=pad)
    if which == "forward":
        return lambda: run(x, weight, stride=stride, padding=pad)
    grad = torch.rand_like(y)
    mask = [which == "input grad", which == "weight grad", False]
    return lambda: _conv_backward(grad, x, weight, None, [stride] * 2, [pad] * 2, [1, 1], transposed, [0, 0], 1, mask)


def _best(run, repeats: int) -> float:
    run()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def time_operations(ops, repeats: int) -> tuple[float, float]:
    """Seconds for one pass over all operations, per operation the best of `repeats` runs, summed: with PyTorch's
    default (NCHW) layout, and with each convolution in the faster of NCHW and channels-last."""
    total, fastest = 0.0, 0.0
    for op in ops:
        t = _best(_thunk(op["shapes"]), repeats)
        total += t
        fastest += t if op["shapes"][0] == "mm" else min(t, _best(_thunk(op["shapes"], torch.channels_last), repeats))
    return total, fastest


def benchmark(preset: str, steps: int, rounds: int, system_malloc: bool = False) -> dict:
    keep_freed = False if system_malloc else keep_freed_memory()        # as the advnets command does
    config = make_config(preset)
    shape = IMAGE_SHAPES.get(config.data.dataset, (3, 32, 32))
    n = max(4 * config.train.batch_size, 512)
    images = torch.rand(n, *shape, generator=torch.Generator().manual_seed(0))
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(config, Path(tmp) / "run", train_images=images)
        ops = operations(trainer)
        time_steps(trainer, 1)                                          # warm up
        thunks = [_thunk(op["shapes"]) for op in ops]                   # one pass over the bound's operations
        best_step, best_ops, best_fastest = (float("inf"),) * 3
        paired, minor_faults = [], []
        for _ in range(rounds):                                         # interleave: noise hits all alike
            total, fastest = time_operations(ops, 2)
            best_ops, best_fastest = min(best_ops, total), min(best_fastest, fastest)
            start = time.perf_counter()
            for _ in range(steps):
                for run in thunks:
                    run()
            bound_pass = (time.perf_counter() - start) / steps
            faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            step = time_steps(trainer, steps)
            minor_faults.append((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / steps)
            best_step = min(best_step, step)
            paired.append(bound_pass / step)
    flops = sum(op["flops"] for op in ops)
    m = config.train.batch_size
    return {
        "benchmark": "train_throughput", "preset": preset,
        "networks": f"G {type(trainer.generator).__name__}, D {type(trainer.discriminator).__name__}",
        "image_shape": list(shape), "data": "uniform random images", "batch_size": m,
        "schedule": "simultaneous", "step": trainer.algorithm.step.name,
        "threads": torch.get_num_threads(), "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
        "steps_per_s": round(1 / best_step, 3), "samples_per_s": round(m / best_step, 1),
        "ms_per_step": round(best_step * 1e3, 1),
        "flops_per_step": flops,
        "bound_gflops": round(flops / best_ops / 1e9, 1),
        "bound_ms_per_step": round(best_ops * 1e3, 1),
        "bound_steps_per_s": round(1 / best_ops, 3),
        "fraction_of_bound": round(best_ops / best_step, 3),
        "fraction_of_bound_paired": round(statistics.median(paired), 3),
        "fraction_of_bound_paired_rounds": [round(r, 3) for r in paired],
        "keep_freed_memory": keep_freed, "minor_page_faults_per_step": round(statistics.median(minor_faults)),
        "achieved_gflops": round(flops / best_step / 1e9, 1),
        "bound_channels_last_ms_per_step": round(best_fastest * 1e3, 1),
        "fraction_of_channels_last_bound": round(best_fastest / best_step, 3),
        "ops": [f"{op['name']} ({op['flops'] / 1e9:.2f} GFLOP)" for op in ops],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="paper-cifar10-conv")
    parser.add_argument("--steps", type=int, default=5, help="iterations per timed round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--system-malloc", action="store_true",
                        help="leave glibc's malloc as it is (advnets.memory.keep_freed_memory not called)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(json.dumps(benchmark(args.preset, args.steps, args.rounds, args.system_malloc), indent=1))


if __name__ == "__main__":
    main()
