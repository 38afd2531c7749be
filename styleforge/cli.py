"""The `styleforge` command. Each subcommand is a module exposing `add_arguments(parser)` and
`run(args)`; its docstring's first line is the help text."""

from __future__ import annotations

import argparse
import importlib
import sys

from styleforge.errors import UserError

# subcommand -> module. Each module keeps its library functions importable and testable.
COMMANDS: dict[str, str] = {
    "dataset": "styleforge.tools.dataset_cmd",
    "train": "styleforge.tools.train_cmd",
    "demo": "styleforge.tools.demo_cmd",
    "metrics": "styleforge.tools.metrics_cmd",
    "generate": "styleforge.tools.generate_cmd",
    "mix": "styleforge.tools.mix_cmd",
    "video": "styleforge.tools.video_cmd",
    "project": "styleforge.tools.project_cmd",
    "import": "styleforge.tools.import_cmd",
    "export": "styleforge.tools.export_cmd",
    "studio": "styleforge.tools.studio_cmd",
    "edit": "styleforge.tools.edit_cmd",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="styleforge", description="Style-based GANs in PyTorch.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        doc = (module.__doc__ or "").strip()
        help_line = doc.splitlines()[0] if doc else name
        p = sub.add_parser(name, help=help_line, description=doc,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result = args._run(args)
    except UserError as e:
        print(f"styleforge {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
