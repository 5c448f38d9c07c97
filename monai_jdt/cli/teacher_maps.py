"""``python -m monai_jdt teacher-maps BUNDLE --checkpoint CKPT --datalist JSON --output-dir DIR``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["DESCRIPTION", "HELP", "NAME", "add_arguments", "run"]

NAME = "teacher-maps"
HELP = "write a trained teacher's softmax probabilities over a datalist as NIfTI maps (offline distillation)"
DESCRIPTION = """\
Run a trained teacher (a MONAI bundle: network_def, preprocessing and inferer of its inference config) with its
inferer (e.g. sliding window) over the images of a datalist JSON, in eval mode without gradients (autocast on
CUDA), invert the preprocessing back to each image's voxel grid (MONAI Invertd), and write the softmax
probabilities as channel-last NIfTI maps <name>_teacher.nii.gz with the image's affine. Maps are written
atomically (temporary file, then rename); existing maps are kept and their cases skipped unless --overwrite, so an
interrupted run resumes. Also writes a datalist JSON whose entries add the key --output-key with each map's path
(relative to the JSON), for training with DistillationLoss(teacher_is_logits=False).

Storage: --dtype uint16 (default) is 16-bit fixed point (steps of 1/65535, probabilities of each voxel sum to
exactly 1; NIfTI has no float16), uint8 (steps of 1/255) or float32.

examples:
  python -m monai_jdt teacher-maps bundles/kits_teacher --checkpoint bundles/kits_teacher/models/model.pt \\
      --datalist kits.json --output-dir teacher_maps --device cuda
  python -m monai_jdt teacher-maps teacher/ --config teacher/configs/inference.json --checkpoint ckpt.pt \\
      --checkpoint-key model --datalist data.json --sections training validation --output-dir maps --dtype float32
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", metavar="BUNDLE", help="bundle folder (its configs/inference.json is read)")
    parser.add_argument("--checkpoint", required=True, metavar="FILE",
                        help="teacher weights: a state_dict or a CheckpointSaver dict (its 'model' entry)")
    parser.add_argument("--datalist", required=True, metavar="JSON", help="datalist JSON with the images")
    parser.add_argument("--output-dir", required=True, metavar="DIR", help="folder of the maps")
    parser.add_argument("--out-datalist", default=None, metavar="JSON",
                        help="datalist to write (default: OUTPUT_DIR/<datalist name>_teacher.json)")
    parser.add_argument("--config", nargs="+", default=None, metavar="FILE",
                        help="config file(s) to read instead of BUNDLE/configs/inference.json (merged in order)")
    parser.add_argument("--checkpoint-key", default=None, metavar="KEY", help="entry of a checkpoint dict to load")
    parser.add_argument("--network-def", default="network_def", metavar="ID", help="network id (default network_def)")
    parser.add_argument("--preprocessing", default="preprocessing", metavar="ID",
                        help="preprocessing id (default preprocessing)")
    parser.add_argument("--inferer", default="inferer", metavar="ID", help="inferer id (default inferer)")
    parser.add_argument("--sections", nargs="+", default=["training"], metavar="SECTION",
                        help="datalist sections to process (default training); others are copied unchanged")
    parser.add_argument("--image-key", default="image", help="key of the image path (default image)")
    parser.add_argument("--output-key", default="teacher", help="key added to the entries (default teacher)")
    parser.add_argument("--name-key", default=None, metavar="KEY",
                        help="entry key with a unique case name (default: from the image file names)")
    parser.add_argument("--dtype", default="uint16", choices=("uint16", "uint8", "float32"), help="storage type")
    parser.add_argument("--device", default="cpu", help="device of the teacher, e.g. cpu, cuda, cuda:1 (default cpu)")
    parser.add_argument("--invert-device", default=None, help="device of the inverse resampling (default --device)")
    parser.add_argument("--no-amp", action="store_true", help="no autocast on CUDA")
    parser.add_argument("--overwrite", action="store_true", help="rewrite existing maps")


def _read_datalist(path: Path, sections: list[str]) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    from monai_jdt.data import load_datalist
    from monai_jdt.data.datalist_io import _read_json

    content = _read_json(path)
    if not isinstance(content, dict):
        raise ValueError(f"datalist file {path} must hold a JSON object")
    lists = {k for k, v in content.items() if isinstance(v, list) and k in ("training", "validation", "test")}
    missing = sorted(set(sections) - lists)
    if missing:
        raise ValueError(f"--sections {missing} are not in the datalist {path} (sections: {sorted(lists)})")
    metadata = {k: v for k, v in content.items() if k not in lists and k not in ("numTraining", "numTest", "path_keys")}
    return metadata, {name: load_datalist(path, name) for name in sorted(lists)}


def run(args: argparse.Namespace) -> int:
    import torch

    from monai_jdt.data import write_datalist
    from monai_jdt.engines import load_teacher, read_bundle_config, write_teacher_maps

    try:
        device = torch.device(args.device)
    except RuntimeError:
        raise ValueError(f"--device must be a torch device such as cpu, cuda or cuda:1, got {args.device!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {args.device} was asked for but CUDA is not available; use --device cpu")
    bundle = read_bundle_config(args.config if args.config else args.bundle,
                                bundle_root=args.bundle, overrides={"device": str(device)})  # fmt: skip
    network = load_teacher(bundle.get(args.network_def, "network"), args.checkpoint, args.checkpoint_key, device)
    preprocessing = bundle.get(args.preprocessing, "preprocessing")
    inferer = bundle.get(args.inferer, "inferer")
    datalist_path = Path(args.datalist)
    metadata, sections = _read_datalist(datalist_path, args.sections)
    written = skipped = 0
    for name in args.sections:
        report = write_teacher_maps(network, sections[name], preprocessing, inferer, args.output_dir,
                                    image_key=args.image_key, output_key=args.output_key, name_key=args.name_key,
                                    dtype=args.dtype, device=device, invert_device=args.invert_device,
                                    amp=not args.no_amp, overwrite=args.overwrite)  # fmt: skip
        sections[name] = report.entries
        written, skipped = written + len(report.written), skipped + len(report.skipped)
    out = Path(args.out_datalist) if args.out_datalist else Path(args.output_dir) / f"{datalist_path.stem}_teacher.json"
    write_datalist(out, sections.get("training", []), validation=sections.get("validation"),
                   test=sections.get("test"), metadata=metadata)  # fmt: skip
    print(f"teacher maps: {written} written, {skipped} already present (kept) in {args.output_dir}; datalist {out}")
    return 0
