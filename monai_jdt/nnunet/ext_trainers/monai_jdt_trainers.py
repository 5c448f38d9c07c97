# monai_jdt nnU-Net trainer registration (python -m monai_jdt nnunet-register)
"""Makes monai_jdt's nnU-Net trainers findable by nnUNetv2_train -tr:
nnUNetTrainerDMLCE, nnUNetTrainerJMLCE, nnUNetTrainerDMLCE_BLS, nnUNetTrainerDMLCE_ClassAgnostic.

Remove with: python -m monai_jdt nnunet-register --unregister
"""

try:
    from monai_jdt.nnunet.trainers import (  # noqa: F401
        nnUNetTrainerDMLCE,
        nnUNetTrainerDMLCE_BLS,
        nnUNetTrainerDMLCE_ClassAgnostic,
        nnUNetTrainerJMLCE,
    )
except ImportError as _err:  # monai_jdt missing or broken: keep nnU-Net's own trainer lookup working
    import warnings as _warnings

    _warnings.warn(f"monai_jdt's nnU-Net trainers are unavailable: {_err}", stacklevel=1)
