#!/usr/bin/env bash
# Install nnU-Net v2 (>= 2.8) into the project's .venv (or the active Python) WITHOUT touching torch.
#
# Why: `pip install nnunetv2` resolves dynamic_network_architectures -> timm -> torchvision, and torchvision pins
# an exact torch. Where no torchvision build matches the installed torch (CPU-only machines, CI), pip replaces
# torch with the newest CUDA build and downloads several GB of CUDA wheels. This script installs nnU-Net's own
# packages with --no-deps and their light dependencies under a constraint that pins the installed torch, so
# pip fails loudly instead of ever replacing torch.
#
# Not installed: timm (and so torchvision). It is only needed by nnU-Net's Primus/EVA transformer trainers; the
# default ResEnc/PlainConv U-Nets and monai_jdt's trainers do not use it. Because nnU-Net's trainer lookup stops
# at the first module it cannot import (the Primus trainers), register monai_jdt's trainers inside nnU-Net's
# package afterwards: `python -m monai_jdt nnunet-register` (MONAI_JDT_NNUNET_REGISTER=1 does it here).
#
# On a GPU machine use the normal install instead: pip install "monai_jdt[nnunet]".
#
# Usage: bash scripts/install_nnunet_cpu.sh [--force]
#   PYTHON=/path/to/python   interpreter to install into (default: .venv/bin/python, else python3)
#   MONAI_JDT_NNUNET_REGISTER=1   also write the trainer shim into nnU-Net (python -m monai_jdt nnunet-register)
# Idempotent: exits at once when a suitable nnU-Net already imports (use --force to reinstall).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -n "${PYTHON:-}" ]; then
    PY="$PYTHON"
elif [ -x .venv/bin/python ]; then
    PY=".venv/bin/python"
else
    PY="python3"
fi
FORCE=0
for arg in "$@"; do
    case "$arg" in
        --force) FORCE=1 ;;
        -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
        *) echo "install_nnunet_cpu.sh: unknown argument '$arg' (only --force)" >&2; exit 2 ;;
    esac
done

# nnU-Net's own packages (installed with --no-deps); ranges are nnunetv2 2.8.1's own requirements.
NNUNET_PACKAGES=(
    "nnunetv2>=2.8,<2.9"
    "dynamic_network_architectures>=0.4.4,<0.5"
    "acvl_utils>=0.2.6,<0.3"
    "batchgenerators>=0.25.1"
    "batchgeneratorsv2>=0.3.2"
)
# Their light, torch-free dependencies (everything nnunetv2, batchgenerators(v2), acvl_utils and
# dynamic_network_architectures declare, minus torch and timm).
LIGHT_DEPENDENCIES=(
    numpy scipy "scikit-image>=0.19.3" scikit-learn pandas "SimpleITK>=2.2.1" nibabel matplotlib seaborn tqdm
    requests graphviz yacs einops "blosc2>=3.3.2" connected-components-3d threadpoolctl imagecodecs tifffile pillow
)

CHECK_IMPORTS='
import importlib.metadata as md
v = md.version("nnunetv2")
major, minor = (int(p) for p in v.split(".")[:2])
assert (major, minor) >= (2, 8), f"nnunetv2 {v} < 2.8"
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from nnunetv2.training.loss.compound_losses import DC_and_CE_loss
from nnunetv2.experiment_planning.plan_and_preprocess_api import plan_experiments, preprocess
from nnunetv2.run.run_training import run_training
print(f"nnunetv2 {v} imports (nnUNetTrainer, DC_and_CE_loss, plan_and_preprocess, run_training)")
'

if ! "$PY" -c "import torch" >/dev/null 2>&1; then
    echo "install_nnunet_cpu.sh: torch is not importable by $PY; install torch first (scripts/setup.sh)" >&2
    exit 1
fi
TORCH_BEFORE="$("$PY" -c 'import torch; print(torch.__version__)')"

if [ "$FORCE" = "0" ] && "$PY" -c "$CHECK_IMPORTS" 2>/dev/null; then
    echo "nnU-Net already installed; torch $TORCH_BEFORE untouched (use --force to reinstall)"
else
    CONSTRAINTS="$(mktemp)"
    trap 'rm -f "$CONSTRAINTS"' EXIT
    echo "torch==$TORCH_BEFORE" > "$CONSTRAINTS"
    PIP=("$PY" -m pip install --quiet --constraint "$CONSTRAINTS")
    "${PIP[@]}" "${LIGHT_DEPENDENCIES[@]}"
    if [ "$FORCE" = "1" ]; then
        "${PIP[@]}" --no-deps --force-reinstall "${NNUNET_PACKAGES[@]}"
    else
        "${PIP[@]}" --no-deps "${NNUNET_PACKAGES[@]}"
    fi
    "$PY" -c "$CHECK_IMPORTS"
fi

TORCH_AFTER="$("$PY" -c 'import torch; print(torch.__version__)')"
if [ "$TORCH_AFTER" != "$TORCH_BEFORE" ]; then
    echo "install_nnunet_cpu.sh: torch changed from $TORCH_BEFORE to $TORCH_AFTER" >&2
    exit 1
fi
echo "torch is still $TORCH_AFTER"

if [ "${MONAI_JDT_NNUNET_REGISTER:-0}" = "1" ]; then
    "$PY" -m monai_jdt nnunet-register
fi
