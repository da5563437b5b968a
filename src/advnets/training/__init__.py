"""Training: Algorithm 1 (algorithm1.py), the fused step (fused.py), the loop (trainer.py), run directories
(run_dir.py), checkpoints (checkpoint.py) and reporters (reporting.py)."""
from .reporting import Reporter, Reporters, RunFiles
from .trainer import TrainResult, Trainer, train

__all__ = ["Reporter", "Reporters", "RunFiles", "TrainResult", "Trainer", "train"]
