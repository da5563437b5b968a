"""run/export.py: the exported G reproduces run.sample on the same noise, in a fresh Python without advnets."""
from __future__ import annotations

import dataclasses
import importlib
import json
import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from advnets import make_config, train
from advnets.figures.image_grid import save_pngs
from advnets.models import sample_noise
from advnets.run.export import ExportError, describe_generator, export_generator, load_safetensors_generator
from advnets.run.loaded import load_run
from tests.conftest import TINY

# A larger G init than the paper's 0.05, so that G(z) varies with z by far more than the tolerances below.
_OVERRIDES = {**TINY, "train.max_steps": 15, "model.generator_init_range": 0.5}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A tiny trained unconditional and conditional run on the 8x8 digits."""
    root = tmp_path_factory.mktemp("runs")
    out = {}
    for name, extra in (("plain", {}), ("conditional", {"model.conditional": True})):
        train(make_config("paper-mnist", {**_OVERRIDES, **extra}), root / name)
        out[name] = load_run(root / name)
    return out


def _noise(run, n: int, seed: int) -> torch.Tensor:
    m = run.config.model
    return sample_noise(n, m.noise_dim, m.noise_prior, torch.Generator().manual_seed(seed))


def _labels(n: int) -> torch.Tensor:
    return torch.arange(n) % 10


def _expected(run, n: int, seed: int) -> torch.Tensor:
    return run.sample(n, seed=seed, labels=_labels(n) if run.num_classes else None)


def test_samples_vary_with_noise(runs):
    # The reproduction tests below would pass vacuously if G ignored z.
    for run in runs.values():
        x = _expected(run, 32, seed=1)
        assert x.std(0).mean() > 1e-2


_FRESH = textwrap.dedent("""
    import json, math, sys
    from pathlib import Path
    sys.path[:] = [p for p in sys.path if not (Path(p or '.') / 'advnets').exists()]
    try:
        import advnets
    except ImportError:
        pass
    else:
        raise SystemExit('advnets is importable: not a fresh Python')
    import torch
    model, meta_path, seed, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    meta = json.loads(Path(meta_path).read_text())
    g = torch.jit.load(model)
    namespace = {'seed': seed, 'n': n, 'noise_dim': meta['noise_dim']}
    exec(meta['noise_prior']['draw'], namespace)
    args = [namespace['z']]
    if meta['num_classes']:
        args.append(torch.arange(n) % 10)
    with torch.no_grad():
        x = g(*args)
    assert list(x.shape) == [n, *meta['output']['image_shape']], x.shape
    torch.save(x, sys.argv[5])
""")


@pytest.mark.parametrize("name", ["plain", "conditional"])
def test_torchscript_runs_without_advnets(runs, name, tmp_path):
    run = runs[name]
    model, meta = export_generator(run, tmp_path / "g.pt", "torchscript")
    assert meta.name == "g.pt.json" and model.is_file()
    # -I: isolated mode (no PYTHONPATH, no user site, the script's directory not on sys.path); the script also
    # drops any sys.path entry that holds advnets (an editable install), and checks that `import advnets` fails.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    out = tmp_path / "x.pt"
    proc = subprocess.run([sys.executable, "-I", "-c", _FRESH, str(model), str(meta), "3", "37", str(out)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    x = torch.load(out)
    expected = _expected(run, 37, seed=3)        # a batch size other than the traced one (2)
    assert torch.allclose(x, expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", ["plain", "conditional"])
def test_safetensors_round_trip(runs, name, tmp_path):
    pytest.importorskip("safetensors")
    run = runs[name]
    model, meta = export_generator(run, tmp_path, "safetensors")
    assert model == tmp_path / "generator.safetensors"
    g = load_safetensors_generator(model)
    z = _noise(run, 25, seed=4)
    kwargs = {"labels": _labels(25)} if run.num_classes else {}
    with torch.no_grad():
        x = g(z, **kwargs)
    assert torch.equal(x, _expected(run, 25, seed=4))
    assert json.loads(meta.read_text())["num_classes"] == run.num_classes
    load = json.loads(meta.read_text())["architecture"]["load"]          # the JSON names the loader above
    module, _, function = load.removesuffix("(PATH)").rpartition(".")
    assert getattr(importlib.import_module(module), function) is load_safetensors_generator


@pytest.mark.parametrize("name", ["plain", "conditional"])
def test_onnx_matches_run_sample(runs, name, tmp_path):
    pytest.importorskip("onnxscript")
    ort = pytest.importorskip("onnxruntime")
    run = runs[name]
    model, _ = export_generator(run, tmp_path / "g.onnx", "onnx")
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    feeds = {"z": _noise(run, 19, seed=5).numpy()}
    if run.num_classes:
        feeds["labels"] = _labels(19).numpy()
    assert sorted(i.name for i in session.get_inputs()) == sorted(feeds)
    (x,) = session.run(None, feeds)
    np.testing.assert_allclose(x, _expected(run, 19, seed=5).numpy(), atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", ["plain", "conditional"])
def test_onnx_model_is_valid(runs, name, tmp_path):
    """Without onnxruntime: the file passes onnx's checker, with the documented inputs and a free batch size."""
    pytest.importorskip("onnxscript")
    onnx = pytest.importorskip("onnx")
    run = runs[name]
    model, meta = export_generator(run, tmp_path / "g.onnx", "onnx")
    proto = onnx.load(str(model))
    onnx.checker.check_model(proto)
    described = json.loads(meta.read_text())["inputs"]
    assert [i.name for i in proto.graph.input] == [i["name"] for i in described]
    dims = [[d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in proto.graph.input]
    assert dims[0][1] == run.config.model.noise_dim and isinstance(dims[0][0], str)      # (batch, noise_dim)
    out = [d.dim_param or d.dim_value for d in proto.graph.output[0].type.tensor_type.shape.dim]
    assert out[1:] == list(run.image_shape) and isinstance(out[0], str)


def test_missing_package_is_a_user_error(runs, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxscript", None)           # `import onnxscript` raises ImportError
    monkeypatch.setitem(sys.modules, "safetensors.torch", None)
    for fmt, hint in (("onnx", "pip install 'advnets[export]'"), ("safetensors", "pip install safetensors")):
        with pytest.raises(ExportError) as info:
            export_generator(runs["plain"], tmp_path / "g", fmt)
        assert info.value.hint == hint
    assert not any(tmp_path.iterdir())                              # nothing half-written


def test_unknown_format(runs, tmp_path):
    with pytest.raises(ExportError, match="torchscript"):
        export_generator(runs["plain"], tmp_path / "g", "pickle")


def test_description(runs, tmp_path):
    run = runs["conditional"]
    _, meta_path = export_generator(run, tmp_path / "g.pt", "torchscript")
    meta = json.loads(meta_path.read_text())
    assert meta["noise_dim"] == 8 and meta["num_classes"] == 10
    assert meta["noise_prior"]["name"] == "uniform" and "sqrt(3)" in meta["noise_prior"]["distribution"]
    assert meta["output"]["image_shape"] == [1, 8, 8]
    assert (meta["output"]["range"]["low"], meta["output"]["range"]["high"]) == (0.0, 1.0)
    assert [i["name"] for i in meta["inputs"]] == ["z", "labels"]
    # the recipe in the JSON draws the same z as advnets
    namespace = {"seed": 7, "n": 6, "noise_dim": 8}
    exec(meta["noise_prior"]["draw"], namespace)
    assert torch.equal(namespace["z"], _noise(run, 6, seed=7))
    assert namespace["z"].abs().max() <= math.sqrt(3)

    gaussian = dataclasses.replace(run.config, model=dataclasses.replace(
        run.config.model, noise_prior="gaussian", generator_output="linear", generator_output_bias="zero"),
        data=dataclasses.replace(run.config.data, contrast_normalize=55.0))
    meta = describe_generator(dataclasses.replace(run, config=gaussian), "onnx", "g.onnx")
    assert meta["output"]["range"]["low"] is None and "contrast" in meta["output"]["range"]["meaning"]
    namespace = {"seed": 7, "n": 6, "noise_dim": 8}
    exec(meta["noise_prior"]["draw"], namespace)
    assert torch.equal(namespace["z"], sample_noise(6, 8, "gaussian", torch.Generator().manual_seed(7)))


def test_save_pngs(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for channels in (1, 3):
        images = rng.uniform(-0.2, 1.2, size=(3, channels, 5, 7)).astype(np.float32)
        paths = save_pngs(torch.from_numpy(images), tmp_path / f"c{channels}")
        assert [p.name for p in paths] == ["sample_00000.png", "sample_00001.png", "sample_00002.png"]
        for p, image in zip(paths, images, strict=True):
            back = np.asarray(Image.open(p), dtype=np.float32) / 255
            back = back.reshape(5, 7, channels).transpose(2, 0, 1)
            assert np.abs(back - np.clip(image, 0, 1)).max() <= 0.5 / 255 + 1e-6
    with pytest.raises(ValueError):
        save_pngs(np.zeros((2, 8, 8)), tmp_path / "bad")


@pytest.mark.parametrize("preset,hidden", [("paper-cifar10-fc", [16, 16]), ("paper-cifar10-conv", [16, 36])])
def test_other_generator_architectures(preset, hidden, tmp_path):
    """The dense (CIFAR-10 / TFD) and deconvolutional generators export too (untrained: only fidelity counts)."""
    from advnets.models import build_models
    from advnets.run.loaded import LoadedRun

    cfg = make_config(preset, {"model.generator_hidden": hidden, "model.noise_dim": 6,
                               "model.generator_conv_channels": 4, "model.generator_init_range": 0.5})
    g, d = build_models(cfg.model, (3, 8, 8), None, torch.Generator().manual_seed(0))
    run = LoadedRun(tmp_path, cfg, g.eval(), d.eval(), (3, 8, 8), 0, 0, torch.device("cpu"), 0)
    z = sample_noise(9, 6, cfg.model.noise_prior, torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = g(z)
    assert expected.std(0).mean() > 1e-2
    model, meta = export_generator(run, tmp_path / "g.pt", "torchscript")
    assert torch.allclose(torch.jit.load(str(model))(z), expected, atol=1e-6, rtol=0)
    assert json.loads(meta.read_text())["output"]["range"]["low"] is None        # a linear output
    model, _ = export_generator(run, tmp_path / "g.safetensors", "safetensors")
    assert torch.equal(load_safetensors_generator(model)(z).detach(), expected)
    if preset.endswith("conv") and _has("onnxscript") and _has("onnxruntime"):
        import onnxruntime as ort

        model, _ = export_generator(run, tmp_path / "g.onnx", "onnx")
        (x,) = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"]).run(None, {"z": z.numpy()})
        np.testing.assert_allclose(x, expected.numpy(), atol=1e-5, rtol=0)


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None
