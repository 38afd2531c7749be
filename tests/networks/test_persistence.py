import json

import pytest
import torch

from styleforge.errors import UserError
from styleforge.networks.persistence import load_network, persistent, save_network
from styleforge.registry import GENERATORS, Registry


@GENERATORS.register("_test_tiny")
@persistent("_test_tiny")
class Tiny(torch.nn.Module):
    def __init__(self, width: int = 3, scale: float = 1.0, **extra):
        super().__init__()
        self.fc = torch.nn.Linear(width, width)
        self.register_buffer("scale", torch.tensor(scale))


def test_persistent_records_constructor_arguments():
    net = Tiny(4, flavour="x")
    assert net.init_kwargs == {"width": 4, "scale": 1.0, "flavour": "x"}
    assert net.registry_name == "_test_tiny"


def test_save_load_round_trip(tmp_path):
    net = Tiny(5, scale=2.5)
    path = tmp_path / "net.safetensors"
    save_network(net, path)
    loaded = load_network(path)
    assert isinstance(loaded, Tiny) and loaded.init_kwargs == net.init_kwargs
    assert not loaded.training
    for k, v in net.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k])
    assert not (tmp_path / "net.safetensors.tmp").exists()


def test_load_refuses_foreign_file(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "other.safetensors"
    save_file({"x": torch.zeros(1)}, str(path), metadata={"config": json.dumps({})})
    with pytest.raises(UserError, match="not a StyleForge file"):
        load_network(path)


def test_load_refuses_truncated_file(tmp_path):
    path = tmp_path / "net.safetensors"
    save_network(Tiny(3), path)
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(UserError, match="truncated or corrupted"):
        load_network(path)


def test_several_networks_in_one_file(tmp_path):
    from styleforge.networks.persistence import pack_networks, save_file_atomic

    nets = {"G": Tiny(2), "G_ema": Tiny(3), "D": Tiny(4)}
    tensors, meta = pack_networks(nets)
    save_file_atomic(tensors, tmp_path / "ckpt.safetensors", meta)
    assert load_network(tmp_path / "ckpt.safetensors").init_kwargs["width"] == 3  # G_ema by default
    assert load_network(tmp_path / "ckpt.safetensors", key="D").init_kwargs["width"] == 4
    with pytest.raises(UserError, match="no network 'X'"):
        load_network(tmp_path / "ckpt.safetensors", key="X")


def test_registry_names_choices_in_error():
    reg = Registry("widget")
    reg.register("a")(dict)
    with pytest.raises(UserError, match="choose one of: a"):
        reg.get("b")
    assert reg.create("a", x=1, y=None) == {"x": 1}
