"""The `advnets` command line: the only place that parses arguments or prints. User errors print one line and exit
1; Ctrl-C or SIGTERM during training checkpoints. One module per command group."""
from __future__ import annotations

import argparse
import signal
import sys
import threading
import warnings

from .. import __version__
from ..errors import AdvnetsError
from ..threads import prefer_passive_wait
from .common import configure_logging


def build_parser() -> argparse.ArgumentParser:
    # The command modules (and torch with them) load here, not at the top: `main` sets OpenMP's wait policy first,
    # which the OpenMP runtime reads once, when torch loads it (threads.py prefer_passive_wait).
    from .config import add_config_command
    from .eval import add_eval_command
    from .extensions import add_infer_command, add_inpaint_figure, add_semisup_command
    from .figure import add_figure_command
    from .sample import add_sample_command
    from .theory import add_theory_command, add_toy1d_figure
    from .tools import add_tool_commands
    from .train import add_train_command

    parser = argparse.ArgumentParser(
        prog="advnets", description="Generative Adversarial Nets (Goodfellow et al., 2014): train, sample, evaluate.")
    parser.add_argument("--version", action="version", version=f"advnets {__version__}")
    loud = parser.add_mutually_exclusive_group()
    loud.add_argument("-q", "--quiet", action="store_true", help="print only warnings and errors")
    loud.add_argument("-v", "--verbose", action="store_true", help="also print debug lines")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    add_train_command(sub)
    add_sample_command(sub)
    add_eval_command(sub)
    figs = add_figure_command(sub)
    add_toy1d_figure(figs)                           # Figure 1: the 1-D picture of training
    add_inpaint_figure(figs)                         # section 7: inpainting by optimising z
    add_theory_command(sub)                          # section 4 checked numerically on the 1-D problem
    add_infer_command(sub)                           # section 7: learned approximate inference E(x) ~ z
    add_semisup_command(sub)                         # section 7: semi-supervised learning with D's features
    add_tool_commands(sub)                           # report, export
    add_config_command(sub)
    return parser


def _one_line_warnings(previous):
    """advnets' own warnings (e.g. unreadable files in an image folder) as `advnets: warning: ...` lines."""
    def formatwarning(message, category, filename, lineno, line=None):
        if category.__module__.startswith("advnets."):
            return f"advnets: warning: {message}\n"
        return previous(message, category, filename, lineno, line)
    return formatwarning


class Terminated(KeyboardInterrupt):
    """SIGTERM outside training (which checkpoints instead): unwinds like Ctrl-C, so temporary files go."""


def _terminate(signum, frame):
    raise Terminated()


def _signals() -> dict:
    """SIGTERM raises `Terminated`; SIGXFSZ is ignored, so a file-size limit is an EFBIG error on the write (a
    one-line OutputError) instead of killing the process. Returns the previous handlers."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    wanted = {signal.SIGTERM: _terminate}
    if hasattr(signal, "SIGXFSZ"):
        wanted[signal.SIGXFSZ] = signal.SIG_IGN
    return {sig: signal.signal(sig, handler) for sig, handler in wanted.items()}


def main(argv: list[str] | None = None) -> int:
    prefer_passive_wait()                            # before torch loads OpenMP: no collapse on a busy machine
    previous, handlers = warnings.formatwarning, {}
    try:
        args = build_parser().parse_args(argv)       # loads torch: a Ctrl-C here is one line too
        configure_logging(-1 if args.quiet else 1 if args.verbose else 0)
        warnings.formatwarning = _one_line_warnings(previous)
        handlers = _signals()
        return args.func(args)
    except AdvnetsError as exc:
        print(f"advnets: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:     # a write or read the commands did not foresee: still one line
        where = f": {exc.filename}" if exc.filename else ""
        print(f"advnets: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:
        print(f"advnets: {'terminated' if isinstance(exc, Terminated) else 'interrupted'}", file=sys.stderr)
        return 143 if isinstance(exc, Terminated) else 130
    finally:
        warnings.formatwarning = previous
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    sys.exit(main())
