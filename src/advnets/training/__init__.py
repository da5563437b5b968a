"""Training: the loop (trainer.py), the run's state (state.py), Algorithm 1's players (algorithm1.py) and its three
steps (step.py), and the reporters (hooks.py)."""
from .hooks import Reporter, Reporters, RunFiles
from .trainer import TrainResult, Trainer, train

__all__ = ["Reporter", "Reporters", "RunFiles", "TrainResult", "Trainer", "train"]
