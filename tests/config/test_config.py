"""The config schema, overrides and config files: values coerced to their types, every mistake a ConfigError."""
import json
import re

import pytest

from advnets.config import Config, from_dict, make_config, parse_override, read_config_file, with_overrides
from advnets.config.coerce import coerce
from advnets.config.schema import DATASETS, SECTIONS, DataConfig, ModelConfig, TrainConfig, field_types
from advnets.errors import ConfigError


def test_overrides_are_parsed_and_coerced():
    assert parse_override("train.lr=0.05") == ("train.lr", 0.05)
    assert parse_override("model.noise_prior=gaussian") == ("model.noise_prior", "gaussian")
    c = make_config("paper-mnist", ["model.generator_hidden=64,32", "train.max_steps=7", "train.lr=1"])
    assert c.model.generator_hidden == (64, 32) and c.train.max_steps == 7
    assert isinstance(c.train.lr, float) and c.train.lr == 1.0
    assert with_overrides(c, {"train.seed": 3}).train.seed == 3 and c.train.seed == 0     # frozen: a new Config


@pytest.mark.parametrize("override, message", [
    ("train.lrr=0.1", "did you mean 'lr'"),
    ("trian.lr=0.1", "did you mean 'train'"),
    ("train.lr", "section.key=value"),
    ("train.batch_size=1.5", "whole number"),
    ("train.batch_size=0", "must be positive"),
    ("model.noise_prior=gausian", "did you mean 'gaussian'"),
    ("model.conditional=yes", "true or false"),
    ("train.schedule=[1, 2]", "must be a string"),
    ("data.dataset=mnsit", "did you mean 'mnist'"),
])
def test_mistakes_are_config_errors_with_a_hint(override, message):
    with pytest.raises(ConfigError, match=message):
        make_config("paper-mnist", [override])


def test_unknown_preset_suggests_the_closest():
    with pytest.raises(ConfigError, match="did you mean 'paper-mnist'"):
        make_config("paper-mnst")


def test_a_config_json_round_trips_and_is_a_base(tmp_path):
    c = make_config("paper-mnist-5k", ["train.lr=0.05", "model.generator_hidden=64,64"])
    path = tmp_path / "config.json"
    path.write_text(c.to_json())
    assert from_dict(json.loads(path.read_text())) == c
    assert make_config(str(path)) == c                                  # make_config accepts a path ...
    again = make_config(path, ["train.seed=4"])                         # ... and overrides on top
    assert again.train.seed == 4 and again.train.lr == 0.05 and again.data.dataset == "mnist-5k"


def test_a_partial_yaml_file_keeps_the_defaults(tmp_path):
    path = tmp_path / "small.yaml"
    path.write_text("data:\n  dataset: digits\ntrain:\n  lr: 0.02\n  momentum_ramp_epochs: [2, 5]\n")
    c = read_config_file(path)
    assert c.data.dataset == "digits" and c.train.lr == 0.02 and c.train.momentum_ramp_epochs == (2, 5)
    assert c.model == Config().model


@pytest.mark.parametrize("text, message", [
    ('{"train": {"lrr": 0.1}}', "did you mean 'lr'"),
    ('{"trian": {}}', "did you mean 'train'"),
    ('{"train": [1]}', "must be an object"),
    ('{"train": {"lr": 0.1', "not valid JSON"),
    ('[1, 2]', "JSON object"),
])
def test_bad_config_files_are_one_line_errors(tmp_path, text, message):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        make_config(path)
    assert "\n" not in str(info.value)


def test_a_missing_config_file_says_so(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        make_config(str(tmp_path / "nope.json"))


@pytest.mark.parametrize("override, message", [
    ("train.max_steps=5.5", "train.max_steps must be a whole number, got 5.5"),
    ("data.mixture_seed=true", "must be a whole number"),
    ("model.generator_hidden=1.7", "must be a list of whole numbers"),
    ("model.generator_hidden=true", "must be a list of whole numbers"),
    ("train.lr=null", "train.lr must be a number, got None"),
    ("train.epochs=null", "must be a whole number, got None"),
    ("train.tensorboard=null", "must be true or false"),
    ("train.lr=1" + "0" * 400, "must be a finite number"),
    ("data.toy_means=1,x", "must be a list of numbers"),
    ("model.generator_activations=relu,tanh", "choose one of relu, sigmoid"),
    ("model.generator_activations=relu,relu,relu", "one per entry of model.generator_hidden"),
    ("train.adam_betas=0.5", "train.adam_betas needs two values"),
])
def test_values_are_read_as_their_annotations_say(override, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        make_config("paper-mnist", [override])


def test_whole_floats_nulls_and_comma_lists_are_read():
    c = make_config("paper-mnist", ["train.max_steps=5.0", "data.mixture_seed=null", "train.batch_size=1e2",
                                    "model.generator_activations=relu,sigmoid", "data.toy_means=-1,2"])
    assert c.train.max_steps == 5 and isinstance(c.train.max_steps, int) and c.data.mixture_seed is None
    assert c.train.batch_size == 100 and c.model.generator_activations == ("relu", "sigmoid")
    assert c.data.toy_means == (-1.0, 2.0)
    assert make_config(overrides={"model.generator_hidden": 64}).model.generator_hidden == (64,)


@pytest.mark.parametrize("section", sorted(SECTIONS))
def test_every_default_survives_the_trip_through_json(section):
    """Every annotation is one coerce() reads: each default, written as JSON and read back, is itself."""
    cls = SECTIONS[section]
    for name, kind in field_types(cls).items():
        default = getattr(cls(), name)
        assert coerce(f"{section}.{name}", kind, json.loads(json.dumps(default))) == default, name


def test_coverage_defaults_to_auto_and_a_stored_config_without_the_key_to_off():
    """null (the default) leaves coverage to the dataset (training/coverage_monitor.py); a config a run stored
    before the key's default changed meant 0."""
    data = json.loads(make_config("paper-mnist-5k").to_json())
    assert data["train"]["coverage_every_epochs"] is None
    del data["train"]["coverage_every_epochs"]
    assert from_dict(data).train.coverage_every_epochs is None                 # a config file: the default
    assert from_dict(data, stored=True).train.coverage_every_epochs == 0       # a run's: what it meant then
    for value in (None, 0, 3):
        data["train"]["coverage_every_epochs"] = value
        assert from_dict(data, stored=True).train.coverage_every_epochs == value
    with pytest.raises(ConfigError, match="train.coverage_every_epochs must be >= 0 or null"):
        make_config("paper-mnist-5k", ["train.coverage_every_epochs=-1"])


def test_each_section_checks_its_own_keys_and_the_config_the_keys_across():
    with pytest.raises(ConfigError, match="data.fold must be 0..4"):
        DataConfig(fold=7).validate()
    with pytest.raises(ConfigError, match="model.noise_prior is 'cauchy'"):
        ModelConfig(noise_prior="cauchy").validate()
    with pytest.raises(ConfigError, match="did you mean 'adam'"):
        TrainConfig(optimizer="adamw").validate()
    assert TrainConfig(batch_size=99).validate().batch_size == 99 and ModelConfig(pack=2).validate().pack == 2
    with pytest.raises(ConfigError, match="divisible"):
        Config(model=ModelConfig(pack=2), train=TrainConfig(batch_size=99)).validate()


def test_every_dataset_the_config_allows_has_a_reader():
    from advnets.data.registry import READERS

    assert tuple(READERS) == DATASETS
