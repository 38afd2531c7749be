"""The `styleforge` command. Each subcommand is a module exposing `add_arguments(parser)` and
`run(args)`; its docstring's first line is the help text.

Errors reach the user as one line on stderr and a non-zero exit: a bad option or file (UserError) or a
file-system fault (OSError: the path and the reason). Any other exception is a bug: one line too, with the
traceback shown under `--debug` or STYLEFORGE_DEBUG=1.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import NoReturn

from styleforge.errors import UserError, error_message, os_error_message

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
DEBUG_VARIABLE = "STYLEFORGE_DEBUG"


class Parser(argparse.ArgumentParser):
    """Reports a bad command line in one line (argparse's default adds the whole usage above it)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="styleforge", description="Style-based GANs in PyTorch.")
    debug_help = f"show the traceback of an unexpected error (or set {DEBUG_VARIABLE}=1)"
    parser.add_argument("--debug", action="store_true", help=debug_help)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        doc = (module.__doc__ or "").strip()
        help_line = doc.splitlines()[0] if doc else name
        p = sub.add_parser(name, help=help_line, description=doc,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(p)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=debug_help)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # --help, or a bad command line (already reported)
        return e.code if isinstance(e.code, int) else 2
    debug = args.debug or os.environ.get(DEBUG_VARIABLE, "") not in ("", "0")
    prefix = f"styleforge {args.command}: error:"
    try:
        result = args._run(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        if debug:
            raise
        if isinstance(e, UserError):
            print(f"{prefix} {error_message(e)}", file=sys.stderr)
            return 2
        if isinstance(e, OSError):
            print(f"{prefix} {os_error_message(e)}", file=sys.stderr)
            return 1
        first_line = (error_message(e).splitlines() or [""])[0]
        print(f"{prefix} unexpected {type(e).__name__}: {first_line} (a bug: please report it with the "
              f"traceback that --debug or {DEBUG_VARIABLE}=1 shows)", file=sys.stderr)
        return 1
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
