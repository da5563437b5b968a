"""Does the Stacked MNIST score depend on the classifier? Reads the same samples of trained stacked-mnist runs with the
package's digit CNN (eval/classifier.py, the one `advnets eval --coverage` and benchmarks/stacked_mnist.py use) and
with an independent one, a scikit-learn support vector machine (RBF kernel) fitted to the same source training
digits; prints one JSON object on stdout.

    PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/stacked_classifier_check.py runs/stacked-remedy [RUN ...]

For each run and each classifier: modes captured and KL to the data's triple distribution (eval/stacked_coverage.py)
on `--samples` samples (default 26,000, noise seeded by `--seed`), how often each digit is read in each channel
relative to the training stacks (1.0: as often as in the data), and the CNN's mean top probability. Beside them: how often
the two classifiers agree on a digit, channel by channel, and on a whole triple, on the samples and on as many real
held-out stacks (the floor, which both classifiers also score), and each classifier's accuracy on the held-out
source digits. A KL that comes from G shows up under both
classifiers; one that comes from how a classifier reads unclear strokes differs between them.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch
from sklearn.svm import SVC

from advnets import load_run
from advnets.data.registry import load_data_split, load_stacked_labels, load_stacked_test
from advnets.data.stacked import label_digits, source_config
from advnets.eval.classifier import load_or_train_classifier
from advnets.eval.stacked_coverage import stacked_coverage, stacked_mode_frequencies

SAMPLES = 26_000


class SVMDigits:
    """A digit classifier independent of the package's CNN: an RBF support vector machine on the raw pixels. It
    gives classes only (scikit-learn's SVC probabilities are a separate, deprecated fit)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray):
        self.svm = SVC(kernel="rbf", gamma="scale").fit(images.reshape(len(images), -1), labels)

    def predict(self, digits: np.ndarray) -> np.ndarray:
        """(N,) classes of (N, 1, 28, 28) digit images."""
        return self.svm.predict(digits.reshape(len(digits), -1))


def read_channels(digit_classifier, stacks: np.ndarray) -> tuple[np.ndarray, float | None]:
    """The digit read in each channel of (N, 3, 28, 28) stacks, (N, 3), and the mean top probability where the
    classifier gives probabilities (None for the SVM)."""
    channels = [np.ascontiguousarray(stacks[:, c:c + 1]) for c in range(3)]
    if isinstance(digit_classifier, SVMDigits):
        return np.stack([digit_classifier.predict(x) for x in channels], 1), None
    p = [np.asarray(digit_classifier.probabilities(x)) for x in channels]
    return np.stack([q.argmax(1) for q in p], 1), round(float(np.mean([q.max(1).mean() for q in p])), 3)


def score(digits: np.ndarray, frequencies: np.ndarray, data_digits: np.ndarray) -> dict:
    """Modes and KL of the (N, 3) digits read, and each channel's digit frequencies relative to the data's."""
    cov = stacked_coverage(digits, frequencies)
    ratio = [np.round(np.bincount(digits[:, c], minlength=10) / len(digits)
                      / (np.bincount(data_digits[:, c], minlength=10) / len(data_digits)), 2).tolist()
             for c in range(3)]
    return {"modes": cov["modes_captured"], "kl": round(cov["kl"], 4), "digit_frequency_vs_data": ratio}


def check_run(run_dir: str, n: int, seed: int) -> dict:
    run = load_run(run_dir, device="cpu")
    data = run.config.data
    if data.dataset != "stacked-mnist":
        raise SystemExit(f"{run_dir} was not trained on stacked-mnist (dataset {data.dataset})")
    run_seed = run.config.train.seed
    train_labels = load_stacked_labels(data, run_seed=run_seed)
    frequencies, data_digits = stacked_mode_frequencies(train_labels), label_digits(train_labels)
    digits = load_data_split(source_config(data), "train")
    held, real = load_stacked_test(data, n, run_seed=run_seed)
    started = time.perf_counter()
    cnn = load_or_train_classifier(data).digit
    svm = SVMDigits(digits.images, digits.labels)
    fit_seconds = time.perf_counter() - started
    samples = run.sample(n, seed=seed).numpy()
    out = {"run": run_dir, "step": run.step, "n": n, "averaged_generator": run.averaged, "classifiers": {}}
    read = {}
    for name, clf in (("package_cnn", cnn), ("sklearn_svm_rbf", svm)):
        accuracy = float((clf.predict(held.test.images) == held.test.labels).mean())
        (fake, confidence), (real_read, _) = read_channels(clf, samples), read_channels(clf, real.images)
        read[name], read[name + "_real"] = fake, real_read
        floor = score(real_read, frequencies, data_digits)
        out["classifiers"][name] = {"held_out_digit_accuracy": round(accuracy, 4),
                                    "samples": {**score(fake, frequencies, data_digits), "mean_confidence": confidence},
                                    "real_floor": {"modes": floor["modes"], "kl": floor["kl"]}}
    for what, suffix in (("samples", ""), ("real_floor", "_real")):
        a, b = read["package_cnn" + suffix], read["sklearn_svm_rbf" + suffix]
        out[f"agreement_{what}"] = {"per_channel": [round(float((a[:, c] == b[:, c]).mean()), 4) for c in range(3)],
                                    "triples": round(float((a == b).all(1).mean()), 4)}
    out["classifier_seconds"] = round(fit_seconds, 1)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", help="run directories of stacked-mnist runs")
    p.add_argument("--samples", type=int, default=SAMPLES, help="samples per run (default %(default)s)")
    p.add_argument("--seed", type=int, default=1, help="noise seed of the samples (default 1)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    result = {"benchmark": "stacked_classifier_check", "runs": [check_run(r, args.samples, args.seed)
                                                                  for r in args.runs]}
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
