"""Train a GAN of the StyleGAN family (every config field is an option; presets fill the rest).

Examples:
  styleforge train --data digits.zip --cfg cpu --cond --kimg 50
  styleforge train --data ffhq256.zip --cfg paper256 --aug ada --gamma 2 --dry-run
  torchrun --nproc_per_node 8 -m styleforge.cli train --data ffhq.zip --cfg stylegan2 --batch 64
  styleforge train --resume latest --kimg 200
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import re
from typing import Any

from styleforge.errors import UserError
from styleforge.training.config import TrainConfig


def field_help() -> dict[str, str]:
    """Each config field's comment in config.py: options are documented in that one place."""
    return dict(re.findall(r"^\s+(\w+): [^#\n]+#\s*(.+)$", inspect.getsource(TrainConfig), flags=re.MULTILINE))


def _option_type(annotation: str) -> dict[str, Any]:
    """argparse settings for a dataclass field's annotation (given as a string)."""
    base = annotation.replace(" | None", "")
    if base == "bool":
        return {"action": argparse.BooleanOptionalAction}
    if base.startswith("tuple[float"):
        return {"type": float, "nargs": 2, "metavar": ("B1", "B2")}
    if base.startswith("dict"):
        return {"type": _json_object, "metavar": "JSON"}
    if base.startswith("list"):
        return {"type": lambda s: [x for x in s.split(",") if x], "metavar": "A,B,..."}
    return {"type": {"int": int, "float": float, "str": str}[base]}


def _json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"not valid JSON: {e}") from e
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("expected a JSON object")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    comments = field_help()
    for f in dataclasses.fields(TrainConfig):
        settings = _option_type(f.type)  # annotations are strings (config.py uses postponed evaluation)
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        help_text = comments.get(f.name, "")
        stated = default == "" or "default:" in help_text  # a comment may state a default it computes
        shown = "" if stated else f" (default: {default if default is not None else 'from preset'})"
        parser.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, default=argparse.SUPPRESS,
                            help=help_text + shown, **settings)
    parser.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")


def user_options(args: argparse.Namespace) -> dict[str, Any]:
    """The config fields given on the command line (argparse leaves the others out)."""
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    options = {k: v for k, v in vars(args).items() if k in names}
    if "betas" in options:
        options["betas"] = tuple(options["betas"])
    return options


def run(args: argparse.Namespace) -> int:
    from styleforge.training.distributed import PeerFailure, init_from_env, shutdown
    from styleforge.training.loop import Trainer, TrainingDiverged

    options = user_options(args)
    if not options.get("data") and not options.get("resume"):
        raise UserError("--data is required (or --resume to continue a run)")
    env = init_from_env()
    try:
        trainer = Trainer(options, env=env)
        if args.dry_run:
            if env.is_main:
                print(trainer.cfg.to_json())
            return 0
        trainer.run()
    except (TrainingDiverged, PeerFailure) as e:
        raise UserError(str(e)) from e
    finally:
        shutdown()
    return 0
