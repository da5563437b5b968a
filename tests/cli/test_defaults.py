"""The command line's defaults are the library's: a command run without an option computes what the library function
called without that argument computes."""
import inspect

import pytest

from advnets.cli import build_parser
from advnets.eval import run_reports
from advnets.eval.mixture_runs import run_mixture_coverage
from advnets.extensions.inference import inference_report
from advnets.extensions.inpaint import inpaint_report
from advnets.extensions.semisup import semisup_report
from advnets.figures.paper_figures import interpolation_figure, samples_figure
from advnets.run.export import FORMATS
from advnets.theory.experiment import run_experiment


def default(function, name):
    return inspect.signature(function).parameters[name].default


# (command line, option's dest, library function, its parameter)
CASES = [
    (["eval", "RUN"], "n_samples", run_reports.parzen_report, "n_samples"),
    (["eval", "RUN"], "n_samples", run_reports.quality_report, "n_samples"),
    (["eval", "RUN"], "per_class", run_reports.class_accuracy_report, "per_class"),
    (["eval", "RUN"], "coverage_samples", run_reports.coverage_report, "n_samples"),
    (["eval", "RUN"], "sigmas", run_reports.parzen_report, "sigmas"),
    (["eval", "RUN"], "seed", run_reports.parzen_report, "seed"),
    (["infer", "RUN"], "steps", inference_report, "steps"),
    (["infer", "RUN"], "n", inference_report, "n"),
    (["figure", "inpaint", "RUN"], "steps", inpaint_report, "steps"),
    (["figure", "inpaint", "RUN"], "n", inpaint_report, "n"),
    (["figure", "inpaint", "RUN"], "restarts", inpaint_report, "restarts"),
    (["figure", "inpaint", "RUN"], "lr", inpaint_report, "lr"),
    (["figure", "inpaint", "RUN"], "mask", inpaint_report, "mask"),
    (["semisup", "RUN"], "n_test", semisup_report, "n_test"),
    (["semisup", "RUN"], "scratch_epochs", semisup_report, "scratch_epochs"),
    (["figure", "samples", "RUN"], "rows", samples_figure, "rows"),
    (["figure", "samples", "RUN"], "cols", samples_figure, "cols"),
    (["figure", "interpolate", "RUN"], "rows", interpolation_figure, "rows"),
    (["figure", "interpolate", "RUN"], "steps", interpolation_figure, "steps"),
    (["figure", "scatter", "RUN"], "n", run_mixture_coverage, "n"),
    (["theory"], "seed", run_experiment, "seed"),
    (["figure", "toy1d"], "seed", run_experiment, "seed"),
]


@pytest.mark.parametrize("argv, dest, function, name", CASES, ids=[f"{' '.join(c[0][:2])} {c[1]}" for c in CASES])
def test_option_defaults_are_the_library_defaults(argv, dest, function, name):
    assert getattr(build_parser().parse_args(argv), dest) == default(function, name)


def test_list_and_choice_defaults():
    parser = build_parser()
    assert parser.parse_args(["semisup", "RUN"]).labels == ",".join(map(str, default(semisup_report, "counts")))
    assert parser.parse_args(["export", "RUN"]).format == FORMATS[0]
