"""Reporters: the Trainer never prints; it calls hooks in order, and RunFiles writes the run directory."""

from advnets.config import make_config
from advnets.training import Reporter, Trainer


class Recorder(Reporter):
    def __init__(self):
        self.events = []

    def start(self, trainer):
        self.events.append(("start", trainer.g_updates))

    def step(self, trainer, stats):
        self.events.append(("step", trainer.g_updates))

    def log(self, record):
        self.events.append(("log_" + record["kind"], record["step"]))

    def samples(self, epoch, step, images, nrow):
        self.events.append(("samples", step))
        self.images = images

    def close(self):
        self.events.append(("close", None))


def test_hooks_in_order_and_nothing_printed(tmp_path, digits_images, tiny_overrides, capsys):
    cfg = make_config(overrides={**tiny_overrides, "train.epochs": 1, "train.log_every_steps": 30})
    rec = Recorder()
    trainer = Trainer(cfg, None, train_images=digits_images, reporter=rec)
    result = trainer.run()
    n = result.step
    kinds = [e[0] for e in rec.events]
    assert kinds[0] == "start" and kinds[-1] == "close" and kinds.count("step") == n
    assert rec.events.index(("log_step", 30)) == rec.events.index(("step", 30)) + 1   # logged after its step
    assert kinds.count("log_step") == n // 30
    assert kinds[-4:] == ["step", "samples", "log_epoch", "close"]        # the grid, then the epoch line
    assert rec.images.shape == (16, 1, 8, 8) and 0 <= rec.images.min() and rec.images.max() <= 1
    assert capsys.readouterr() == ("", "")                                 # the library prints nothing
    assert not any(tmp_path.iterdir())                                     # run_dir None: no file at all


def test_run_files_write_metrics_and_grids(tmp_path, digits_images, tiny_overrides):
    Trainer(make_config(overrides=tiny_overrides), tmp_path / "run", train_images=digits_images).run()
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2 and (tmp_path / "run" / "samples" / "epoch_0002.png").is_file()
