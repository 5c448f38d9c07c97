#!/usr/bin/env bash
# Build the project-local virtual environment `.venv` and install monai_jdt into it (editable, all extras).
#
# Torch policy (the only heavy dependency):
#   * a torch already importable inside .venv is kept as it is;
#   * MONAI_JDT_TORCH="<pip requirement and options>" installs that instead, e.g. a CUDA build:
#       MONAI_JDT_TORCH="torch --index-url https://download.pytorch.org/whl/cu126" bash scripts/setup.sh
#   * MONAI_JDT_SYSTEM_SITE=1 creates .venv with --system-site-packages, so a torch installed system-wide
#     (a GPU machine's own build) is reused and not downloaded again;
#   * otherwise torch==2.13.0 is installed (a local CPU wheel on the CI machines; it never pulls CUDA wheels there).
# monai_jdt itself only requires torch>=2.3, so pip never replaces the torch chosen above.
#
# nnU-Net v2 (optional integration, `monai_jdt.nnunet`): installed by scripts/install_nnunet_cpu.sh, which never
# touches torch (plain `pip install nnunetv2` would pull torchvision and CUDA wheels). MONAI_JDT_NNUNET=0 skips it;
# the nnU-Net tests then skip with a reason. On a GPU machine `pip install "monai_jdt[nnunet]"` is the normal route.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    if [ "${MONAI_JDT_SYSTEM_SITE:-0}" = "1" ]; then
        "$PY" -m venv --system-site-packages .venv
    else
        "$PY" -m venv .venv
    fi
fi
VPIP=".venv/bin/python -m pip"
if ! .venv/bin/python -c "import torch" >/dev/null 2>&1; then
    # shellcheck disable=SC2086
    $VPIP install --quiet ${MONAI_JDT_TORCH:-torch==2.13.0}
fi
$VPIP install --quiet -e ".[all]"
# ITK's image IO for MONAI's ITKReader (the tests read the datasets with it as well as with nibabel): only the
# core and IO wheels (~100 MB) instead of the full `itk` meta-package (~280 MB). MONAI_JDT_ITK=0 skips it.
if [ "${MONAI_JDT_ITK:-1}" != "0" ] && ! .venv/bin/python -c "import itk" >/dev/null 2>&1; then
    $VPIP install --quiet --no-deps "itk==5.4.*" "itk-core==5.4.*" "itk-io==5.4.*"
fi
if [ "${MONAI_JDT_NNUNET:-1}" != "0" ]; then
    PYTHON=.venv/bin/python bash scripts/install_nnunet_cpu.sh
fi
# builds the overlap losses' native CPU kernel now (about 2 s, cached); where it cannot, a warning says why
.venv/bin/python -c "import torch, monai, monai_jdt; from monai_jdt.losses.functional._native import library; native = 'built' if library() else 'unavailable (torch kernel)'; print(f'monai_jdt {monai_jdt.__version__} ready: torch {torch.__version__}, monai {monai.__version__}, cuda={torch.cuda.is_available()}, native CPU kernel {native}')"
