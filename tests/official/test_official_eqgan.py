"""EqGAN-SA snapshots: official module trees with their plain torch.nn members (each SEL's InstanceNorm2d,
Sequentials and LeakyReLU), imported and compared with the images of genforce/eqgan-sa's own code
(tests/official/data/eqgan_sa_official.safetensors, made by scripts/reference_eqgan.py from the numbers of
official_numbers.py)."""

import json
import os
import pickle
from pathlib import Path

import pytest
import torch
from official_numbers import fill_official
from official_pickles import Payload, install_official_globals, official_module_tree, official_pickle
from safetensors import safe_open
from tools_networks import eqgan_official_state

import styleforge
from styleforge.cli import main
from styleforge.errors import UserError
from styleforge.official.importer import describe, import_official_pickle
from styleforge.official.names import official_kwargs_to_ours
from styleforge.registry import GENERATORS

REFERENCE = Path(__file__).parent / "data" / "eqgan_sa_official.safetensors"


@pytest.fixture
def official_globals(monkeypatch):
    return install_official_globals(monkeypatch)


@pytest.fixture(scope="module")
def reference():
    with safe_open(str(REFERENCE), framework="pt") as f:
        tensors, meta = {k: f.get_tensor(k) for k in f.keys()}, f.metadata()
    kwargs = dict(json.loads(meta["kwargs"]), config_kwargs={})
    return tensors, kwargs, {k: tuple(v) for k, v in json.loads(meta["parameters"]).items()}


def official_tree(kwargs: dict, **changes) -> torch.nn.Module:
    """The official G's module tree holding official_numbers' values, our names mapped to the official ones."""
    ours = GENERATORS.get("stylegan2")(**official_kwargs_to_ours(kwargs, "G"))
    tree = official_module_tree(fill_official(eqgan_official_state(ours)), kwargs)
    for name, value in changes.items():
        setattr(tree.get_submodule(name.rpartition(".")[0]), name.rpartition(".")[2], value)
    return tree


def test_our_names_are_the_official_parameters(reference):
    _, kwargs, official = reference
    tree = official_tree(kwargs)
    assert {k: tuple(v.shape) for k, v in tree.state_dict().items()} == official


def test_a_snapshot_with_torch_nn_members_gives_the_official_images(tmp_path, official_globals, reference):
    tensors, kwargs, _ = reference
    sentinel = tmp_path / "code-ran"
    path = official_pickle(tmp_path / "network-snapshot.pkl", official_globals, sentinel, G_ema=official_tree(kwargs))
    for member in (b"torch.nn.modules.instancenorm", b"InstanceNorm2d", b"Sequential", b"LeakyReLU"):
        assert member in path.read_bytes()  # pickled by torch, by reference to the class
    out = tmp_path / "cat.safetensors"
    assert main(["import", "--pkl", str(path), "--out", str(out)]) == 0
    assert not sentinel.exists()
    G = styleforge.load(out)
    heatmap = [tensors[f"heatmap.{k}"] for k in ("b8", "b16", "b32")]
    images = G(tensors["z"], None, noise_mode="const", heatmap=heatmap)
    torch.testing.assert_close(images, tensors["images"], rtol=1e-4, atol=1e-3)
    moved = G(tensors["z"], None, noise_mode="const", heatmap=[h.roll(5, dims=-1) for h in heatmap])
    assert (moved - images).abs().mean() > 1e-2  # the heatmaps matter


@pytest.mark.parametrize("member, value, message", [
    ("synthesis.b8.conv1.sel.inorm_fn", torch.nn.InstanceNorm2d(8, affine=False, eps=1e-3), "eps=0.001"),
    ("synthesis.b8.conv1.sel.output.0", torch.nn.LeakyReLU(0.1), "negative_slope=0.1"),
    ("synthesis.b8.conv1.sel.inorm_fn", torch.nn.Identity(), "torch.nn.modules.linear.Identity"),
    ("synthesis.b8.conv1.extra", torch.nn.LeakyReLU(0.2), "'G_ema.synthesis.b8.conv1.extra' is a torch.nn LeakyReLU;"),
])
def test_torch_nn_members_other_than_the_official_ones_are_refused(tmp_path, official_globals, reference, member,
                                                                   value, message):
    _, kwargs, _ = reference
    tree = official_tree(kwargs, **{member: value})
    path = official_pickle(tmp_path / "x.pkl", official_globals, tmp_path / "code-ran", G_ema=tree)
    with pytest.raises(UserError, match=message):
        import_official_pickle(path, tmp_path / "out.safetensors")
    assert not (tmp_path / "out.safetensors").exists()


def test_a_payload_inside_a_torch_nn_members_state_is_refused(tmp_path, official_globals, reference):
    _, kwargs, _ = reference
    sentinel = tmp_path / "code-ran"
    evil = torch.nn.InstanceNorm2d(8)
    evil.eps = Payload(os.system, f"touch {sentinel}")  # pickled with the module's state
    tree = official_tree(kwargs, **{"synthesis.b8.conv1.sel.inorm_fn": evil})
    path = official_pickle(tmp_path / "evil.pkl", official_globals, sentinel, G_ema=tree)
    with pytest.raises(UserError, match="system"):
        import_official_pickle(path, tmp_path / "out.safetensors")
    assert not sentinel.exists() and not (tmp_path / "out.safetensors").exists()


def test_a_hook_on_a_torch_nn_member_is_refused(tmp_path, official_globals, reference):
    _, kwargs, _ = reference
    norm = torch.nn.InstanceNorm2d(8)
    norm.register_forward_hook(print)
    tree = official_tree(kwargs, **{"synthesis.b8.conv1.sel.inorm_fn": norm})
    path = official_pickle(tmp_path / "x.pkl", official_globals, tmp_path / "code-ran", G_ema=tree)
    with pytest.raises(UserError, match="builtins.print"):
        import_official_pickle(path, tmp_path / "out.safetensors")


def test_list_names_eqgan_sa_and_the_dims(tmp_path, official_globals, reference):
    _, kwargs, _ = reference
    path = official_pickle(tmp_path / "cat.pkl", official_globals, tmp_path / "code-ran",
                           G_ema=official_tree(kwargs), augment_pipe=None, training_set_kwargs={"resolution": 32})
    lines = describe(path)
    assert lines[0].endswith("EqGAN-SA (PyTorch)") and lines[1] == "keys: G_ema, augment_pipe, training_set_kwargs"
    assert "Generator: 32x32, z_dim 8, w_dim 8, c_dim 0" in lines[2]
    assert lines[3].split() == ["augment_pipe", "None"] and "dict with 1 entries" in lines[4]


def _with(module: torch.nn.Module, **attrs) -> torch.nn.Module:
    for name, value in attrs.items():
        setattr(module, name, value)
    return module


@pytest.mark.parametrize("module, message", [
    (_with(torch.nn.InstanceNorm2d(4), eps="1e-5"), "InstanceNorm2d.eps in the pickle is a str"),
    (_with(torch.nn.InstanceNorm2d(4), affine=1), "InstanceNorm2d.affine in the pickle is a int"),
    (_with(torch.nn.LeakyReLU(0.2), note=3), "unexpected field 'note'"),
    (_with(torch.nn.LeakyReLU(0.2), weight=torch.nn.Parameter(torch.ones(1))), "unexpected tensors: weight"),
    (_with(torch.nn.InstanceNorm2d(4), inner=torch.nn.Sequential()), "holds sub-modules"),
])
def test_torch_nn_members_are_checked_against_their_class(tmp_path, module, message):
    """The state a pickled torch.nn member hands over must be what its class holds."""
    from styleforge.official.unpickler import read_pickle

    with open(tmp_path / "m.pkl", "wb") as f:
        pickle.dump({"G": module}, f)
    with pytest.raises(UserError, match=message):
        read_pickle(tmp_path / "m.pkl")


def test_a_torch_nn_member_keeps_its_settings(tmp_path):
    from styleforge.official.unpickler import read_pickle

    with open(tmp_path / "m.pkl", "wb") as f:
        pickle.dump(torch.nn.Sequential(torch.nn.LeakyReLU(0.1), torch.nn.InstanceNorm2d(4, eps=1e-3)), f)
    seq = read_pickle(tmp_path / "m.pkl")
    assert seq.class_name == "Sequential" and list(seq.children) == ["0", "1"]
    assert seq.children["0"].config == {"negative_slope": 0.1, "inplace": False}
    assert seq.children["1"].config == {"num_features": 4, "eps": 1e-3, "momentum": 0.1, "affine": False,
                                        "track_running_stats": False}
