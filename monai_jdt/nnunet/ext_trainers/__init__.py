"""A folder for nnU-Net's ``nnUNet_extTrainer`` variable: ``nnUNet_extTrainer=<this folder> nnUNetv2_train ...``.

nnU-Net imports the modules of this folder by file name; the one module imports monai_jdt's trainers. See
:mod:`monai_jdt.nnunet.register`.
"""
