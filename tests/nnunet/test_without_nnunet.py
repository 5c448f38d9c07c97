"""Without nnU-Net: the package imports, the trainers raise a helpful ImportError, the nnU-Net tests skip.

nnU-Net is hidden in a subprocess with ``sys.modules["nnunetv2"] = None`` (imports of it then fail and
``importlib.util.find_spec`` reports it missing), so this runs whether or not nnU-Net is installed here. One
subprocess does everything (interpreter and torch start-up dominate the cost).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TARGETS = [f"tests/nnunet/test_{name}.py" for name in ("loss", "register", "trainers", "distributed", "end_to_end")]
SCRIPT = f"""
import sys
sys.modules["nnunetv2"] = None
import torch, monai_jdt.nnunet as n
assert not n.nnunet_available() and n.nnunet_version() is None
loss = n.NNUNetOverlapCELoss()(torch.randn(1, 2, 4, 4), torch.randint(0, 2, (1, 1, 4, 4)))
assert torch.isfinite(loss)
try:
    n.nnUNetTrainerDMLCE
except ImportError as err:
    print("IMPORT-ERROR", err)
from monai_jdt.cli import main
print("CLI-EXIT", main(["nnunet-register"]))
import pytest
sys.exit(pytest.main(["-q", "-rs", "-p", "no:cacheprovider", "-p", "no:xdist", "-m", "not slow or slow", *{TARGETS!r}]))
"""


def test_package_works_and_nnunet_tests_skip_without_nnunet():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=False, cwd=ROOT)
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    # the trainers name the extra, the version and the CPU install script
    assert "IMPORT-ERROR" in out and "nnunetv2>=2.8" in out
    assert 'pip install "monai_jdt[nnunet]"' in out and "scripts/install_nnunet_cpu.sh" in out
    # the CLI prints one error line and exits with 1
    assert "CLI-EXIT 1" in out and "monai_jdt[nnunet]" in done.stderr
    # the nnU-Net tests skip with the reason; the others (plain torch references) pass
    assert "skipped" in out and "passed" in out and "failed" not in out
    assert "nnU-Net v2 >= 2.8 is not installed (bash scripts/install_nnunet_cpu.sh)" in out
