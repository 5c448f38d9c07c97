"""Command line of monai_jdt: ``python -m monai_jdt <command> ...``.

Each command lives in its own module of this package and defines ``NAME`` (the command word), ``HELP`` (one
line), ``add_arguments(parser)`` and ``run(args) -> int``. Commands are discovered automatically.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence
from types import ModuleType

__all__ = ["build_parser", "main"]


def _commands() -> list[ModuleType]:
    mods = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(mod, "NAME") and hasattr(mod, "run"):
            mods.append(mod)
    return mods


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, ModuleType]]:
    parser = argparse.ArgumentParser(
        prog="python -m monai_jdt",
        description="monai_jdt: soft-label segmentation losses, transforms, metrics and MONAI bundles.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    table: dict[str, ModuleType] = {}
    for mod in _commands():
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=getattr(mod, "DESCRIPTION", mod.HELP),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        mod.add_arguments(p)
        table[mod.NAME] = mod
    return parser, table


def main(argv: Sequence[str] | None = None) -> int:
    parser, table = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(table[args.command].run(args) or 0)
    except (FileNotFoundError, ValueError, TypeError) as err:
        # bad input: one clear line, no traceback (set MONAI_JDT_DEBUG=1 to see it)
        import os

        if os.environ.get("MONAI_JDT_DEBUG"):
            raise
        print(f"error: {err}", file=sys.stderr)
        return 1
