"""`advnets config`: a preset's (or a config file's) full configuration as JSON, or the list of presets."""
from __future__ import annotations

import argparse

from ..config import make_config, preset_names


def cmd_config(args: argparse.Namespace) -> int:
    if args.list:
        print("\n".join(preset_names()))
        return 0
    print(make_config(args.preset, args.set).to_json())
    return 0


def add_config_command(sub) -> None:
    p = sub.add_parser("config", help="print a preset's full configuration as JSON, or list presets")
    p.add_argument("--preset", help="preset name, or a JSON / YAML config file")
    p.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE", help="override a value")
    p.add_argument("--list", action="store_true", help="list the preset names")
    p.set_defaults(func=cmd_config)
