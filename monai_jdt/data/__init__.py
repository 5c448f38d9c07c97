"""Dataset readers (QUBIQ, LiTS, KiTS) that build MONAI datalists, and synthetic stand-ins in their layouts.

* :func:`qubiq_datalist`, :func:`lits_datalist`, :func:`kits_datalist`: one entry per case (absolute paths, a
  ``"fold"`` key), validated against the NIfTI headers; :func:`select_fold` splits by fold.
* :func:`write_datalist` / :func:`load_datalist`: portable decathlon-style JSON (paths relative to the JSON),
  also readable by ``monai.data.load_decathlon_datalist``.
* :class:`LoadKiTSAnnotatorsd`: KiTS21/23 instance files -> one label map per annotator.
* :mod:`monai_jdt.data.synthetic`: small synthetic copies of the three layouts.

See ``docs/datasets.md``.
"""

from __future__ import annotations

from monai_jdt.data.datalist_io import load_datalist, write_datalist
from monai_jdt.data.folds import assign_folds, fold_sizes, select_fold
from monai_jdt.data.kits import (
    KITS_AGGREGATION_ORDER,
    KITS_EDITIONS,
    KITS_LABELS,
    KITS_REGIONS,
    kits_datalist,
    kits_edition,
    parse_instance_name,
    region_masks,
)
from monai_jdt.data.kits_annotators import (
    LoadKiTSAnnotators,
    LoadKiTSAnnotatorsd,
    annotator_label_maps,
    annotator_plan,
    load_kits_annotators,
)
from monai_jdt.data.lits import LITS_LABELS, lits_datalist
from monai_jdt.data.qubiq import QUBIQ_SPLITS, QUBIQ_TASKS, QubiqTask, qubiq_datalist

__all__ = [
    "KITS_AGGREGATION_ORDER",
    "KITS_EDITIONS",
    "KITS_LABELS",
    "KITS_REGIONS",
    "LITS_LABELS",
    "QUBIQ_SPLITS",
    "QUBIQ_TASKS",
    "LoadKiTSAnnotators",
    "LoadKiTSAnnotatorsd",
    "QubiqTask",
    "annotator_label_maps",
    "annotator_plan",
    "assign_folds",
    "fold_sizes",
    "kits_datalist",
    "kits_edition",
    "lits_datalist",
    "load_datalist",
    "load_kits_annotators",
    "parse_instance_name",
    "qubiq_datalist",
    "region_masks",
    "select_fold",
    "write_datalist",
]
