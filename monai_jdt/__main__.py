"""``python -m monai_jdt``: see :mod:`monai_jdt.cli`."""

from __future__ import annotations

import sys

from monai_jdt.cli import main

if __name__ == "__main__":
    sys.exit(main())
