"""load_teacher / load_checkpoint_state / read_bundle_config: network objects, bundle configs, checkpoint forms."""

from __future__ import annotations

import json

import pytest
import torch
from monai.networks.nets import UNet

from monai_jdt.engines import load_checkpoint_state, load_teacher, read_bundle_config

NET = {"_target_": "monai.networks.nets.UNet", "spatial_dims": 2, "in_channels": 1, "out_channels": 3,
       "channels": [4, 8], "strides": [2], "num_res_units": 0}  # fmt: skip


def tiny_unet() -> torch.nn.Module:
    return UNet(spatial_dims=2, in_channels=1, out_channels=3, channels=(4, 8), strides=(2,), num_res_units=0)


def write_bundle(root, config: dict, name: str = "inference.json"):
    (root / "configs").mkdir(parents=True, exist_ok=True)
    path = root / "configs" / name
    path.write_text(json.dumps(config))
    return path


def assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for name in sa:
        torch.testing.assert_close(sa[name], sb[name], rtol=0, atol=0)


@pytest.mark.parametrize("form", ["state_dict", "checkpoint_saver", "custom_key", "ddp_prefix"])
def test_checkpoint_forms(tmp_path, form: str) -> None:
    trained = tiny_unet()
    state = trained.state_dict()
    key = None
    if form == "state_dict":
        obj = state
    elif form == "checkpoint_saver":
        obj = {"model": state, "optimizer": torch.optim.SGD(trained.parameters(), 0.1).state_dict()}
    elif form == "custom_key":
        obj, key = {"teacher_net": state, "epoch": 3}, "teacher_net"
    else:
        obj = {f"module.{k}": v for k, v in state.items()}
    torch.save(obj, tmp_path / "ckpt.pt")
    teacher = load_teacher(tiny_unet(), tmp_path / "ckpt.pt", key=key)
    assert_same_weights(teacher, trained)
    assert not teacher.training and all(not p.requires_grad for p in teacher.parameters())


def test_bundle_folder_and_config_file(tmp_path) -> None:
    path = write_bundle(tmp_path / "bundle", {"network_def": NET, "teacher_def": {**NET, "out_channels": 2}})
    trained = tiny_unet()
    torch.save(trained.state_dict(), tmp_path / "model.pt")
    from_folder = load_teacher(tmp_path / "bundle", tmp_path / "model.pt", device="cpu")
    from_file = load_teacher(str(path), tmp_path / "model.pt")
    assert_same_weights(from_folder, trained)
    assert_same_weights(from_file, trained)
    other = load_teacher(path, None, network_def_id="teacher_def")
    x = torch.randn(1, 1, 8, 8)
    assert other(x).shape == (1, 2, 8, 8)


def test_bundle_scripts_are_importable(tmp_path) -> None:
    """A bundle's own ``scripts.*`` targets resolve (bundle root on sys.path while building), as monai.bundle."""
    root = tmp_path / "bundle"
    (root / "scripts").mkdir(parents=True)
    (root / "scripts" / "__init__.py").write_text("")
    (root / "scripts" / "nets.py").write_text(
        "import torch\nclass Head(torch.nn.Conv2d):\n    def __init__(self):\n        super().__init__(1, 2, 1)\n"
    )
    write_bundle(root, {"network_def": {"_target_": "scripts.nets.Head"}})
    assert type(read_bundle_config(root).get("network_def")).__name__ == "Head"


def test_errors_name_files_and_keys(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="checkpoint file .*missing.pt does not exist"):
        load_teacher(tiny_unet(), tmp_path / "missing.pt")
    torch.save({"net": tiny_unet().state_dict(), "epoch": 1}, tmp_path / "ckpt.pt")
    with pytest.raises(ValueError, match=r"neither a state_dict nor .*\['epoch', 'net'\].*pass key="):
        load_teacher(tiny_unet(), tmp_path / "ckpt.pt")
    with pytest.raises(ValueError, match=r"key 'model' is not in the checkpoint .*ckpt.pt \(its top-level keys"):
        load_teacher(tiny_unet(), tmp_path / "ckpt.pt", key="model")
    wrong = UNet(spatial_dims=2, in_channels=1, out_channels=2, channels=(4, 8), strides=(2,), num_res_units=0)
    with pytest.raises(ValueError, match=r"checkpoint .*ckpt.pt key 'net' does not fit the teacher network"):
        load_teacher(wrong, tmp_path / "ckpt.pt", key="net")
    (tmp_path / "junk.pt").write_text("not a checkpoint")
    with pytest.raises(ValueError, match="junk.pt could not be read"):
        load_checkpoint_state(tmp_path / "junk.pt")
    path = write_bundle(tmp_path / "b", {"network": NET})
    with pytest.raises(ValueError, match=r"network id 'network_def' is not in the bundle config .*inference.json"):
        load_teacher(path, None)
    with pytest.raises(FileNotFoundError, match="bundle folder or config file .*nowhere does not exist"):
        load_teacher(tmp_path / "nowhere", None)
    with pytest.raises(FileNotFoundError, match="has no configs/inference.json"):
        load_teacher(tmp_path, None)
    bad = write_bundle(tmp_path / "c", {"network_def": {**NET, "strides": "x"}})
    with pytest.raises(ValueError, match=r"could not build network 'network_def' from the bundle config"):
        load_teacher(bad, None)
    with pytest.raises(TypeError, match="network_def_or_config must be"):
        load_teacher(42, None)
