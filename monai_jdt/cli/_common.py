"""Pieces shared by the command modules (private: the leading underscore keeps it out of command discovery)."""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable, Mapping, Sequence

__all__ = ["check_applicable", "run_with_one_line_warnings"]


def check_applicable(args: argparse.Namespace, only: Mapping[str, Sequence[str]]) -> None:
    """Reject an option given for a data set it does not apply to (``only``: option name -> data sets).

    Raises:
        ValueError: e.g. "--task applies to qubiq only, got it for lits".
    """
    for name, datasets in only.items():
        value = getattr(args, name)
        if value not in (None, False) and args.dataset not in datasets:
            flag = "--" + name.replace("_", "-")
            raise ValueError(f"{flag} applies to {' and '.join(datasets)} only, got it for {args.dataset}")


def run_with_one_line_warnings(run: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """``run(args)``, printing monai_jdt's own ``UserWarning``s as one ``warning: ...`` line each on stderr."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.filterwarnings("always", category=UserWarning, module=r"monai_jdt\.")
        status = run(args)
    for w in caught:  # ours: one line each, without the source line Python would print
        if w.category is UserWarning and "monai_jdt" in w.filename:
            print(f"warning: {w.message}", file=sys.stderr)
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    return status
