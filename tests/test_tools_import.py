"""Import of official pickles. The pickles are built here in the official format -- networks reduced to
`torch_utils.persistence._reconstruct_persistent_obj(meta)` with meta = {type, version, module_src,
class_name, state}, kwargs as `dnnlib.util.EasyDict` -- by a test-only Pickler, from tiny networks whose
parameter names are the official ones. No official source is involved."""

import builtins
import collections
import io
import os
import pickle
import sys
import types

import pytest
import torch
from tools_networks import tiny_generator

import styleforge
from styleforge.cli import main
from styleforge.errors import UserError
from styleforge.official.importer import import_official_pickle
from styleforge.registry import DISCRIMINATORS

OFFICIAL_CLASS_NAMES = {"StyleGAN2Generator": "Generator", "StyleGAN2Discriminator": "Discriminator"}


class EasyDict(dict):
    pass


def _never_called(meta):
    raise AssertionError("the official reconstruct function must never run")


@pytest.fixture
def official_globals(monkeypatch):
    """Makes `torch_utils.persistence._reconstruct_persistent_obj` and `dnnlib.util.EasyDict` picklable by name."""
    persistence = types.ModuleType("torch_utils.persistence")
    reconstruct = types.FunctionType(_never_called.__code__, {}, "_reconstruct_persistent_obj")
    reconstruct.__module__, reconstruct.__qualname__ = "torch_utils.persistence", "_reconstruct_persistent_obj"
    persistence._reconstruct_persistent_obj = reconstruct
    util = types.ModuleType("dnnlib.util")
    monkeypatch.setattr(EasyDict, "__module__", "dnnlib.util")
    util.EasyDict = EasyDict
    for name, module in [("torch_utils", types.ModuleType("torch_utils")), ("torch_utils.persistence", persistence),
                         ("dnnlib", types.ModuleType("dnnlib")), ("dnnlib.util", util)]:
        monkeypatch.setitem(sys.modules, name, module)
    return reconstruct


def _easy(value):
    return EasyDict({k: _easy(v) for k, v in value.items()}) if isinstance(value, dict) else value


def official_kwargs(net):
    """The constructor kwargs as the official code records them: sub-kwargs always EasyDicts, never None."""
    kwargs = getattr(net, "init_kwargs", {})
    return _easy({k: {} if k.endswith("_kwargs") and v is None else v for k, v in kwargs.items()})


class OfficialFormatPickler(pickle.Pickler):
    """Pickles nn.Modules the way torch_utils.persistence does; `module_src` is a payload that must never run."""

    def __init__(self, file, reconstruct, module_src: str, protocol: int = 3):
        super().__init__(file, protocol=protocol)
        self.reconstruct, self.module_src = reconstruct, module_src

    def reducer_override(self, obj):
        if not isinstance(obj, torch.nn.Module):
            return NotImplemented
        state = {
            "training": obj.training,
            "_parameters": collections.OrderedDict(obj._parameters),
            "_buffers": collections.OrderedDict(obj._buffers),
            "_non_persistent_buffers_set": set(obj._non_persistent_buffers_set),
            "_modules": collections.OrderedDict(obj._modules),
            "_forward_hooks": collections.OrderedDict(),
            "_init_args": (),
            "_init_kwargs": official_kwargs(obj),
        }
        class_name = OFFICIAL_CLASS_NAMES.get(type(obj).__name__, type(obj).__name__)
        meta = dict(type="class", version=6, module_src=self.module_src, class_name=class_name, state=state)
        return self.reconstruct, (meta,)


def official_pickle(path, reconstruct, sentinel, protocol=3, **entries):
    payload = f"open({str(sentinel)!r}, 'w').close()\n"
    with open(path, "wb") as f:
        OfficialFormatPickler(f, reconstruct, payload, protocol).dump(entries)
    return path


def tiny_discriminator():
    torch.manual_seed(1)
    return DISCRIMINATORS.get("stylegan2")(img_resolution=16, channel_base=512, channel_max=32,
                                           epilogue_kwargs=dict(mbstd_group_size=2)).eval()


@pytest.fixture(params=[2, 4], ids=["protocol2", "protocol4"])  # the official pickles use Python's default: 3 or 4
def snapshot(tmp_path, official_globals, request):
    """A network-snapshot-style pickle of tiny G, D, G_ema (G_ema differs from G, as after training)."""
    G, D, G_ema = tiny_generator(seed=0), tiny_discriminator(), tiny_generator(seed=1)
    sentinel = tmp_path / "code-ran"
    path = official_pickle(tmp_path / "network-snapshot-000000.pkl", official_globals, sentinel, request.param,
                           G=G, D=D, G_ema=G_ema, augment_pipe=None, training_set_kwargs=_easy({"resolution": 16}))
    return path, {"G": G, "D": D, "G_ema": G_ema}, sentinel


def test_every_tensor_arrives_and_the_generator_is_the_same(snapshot, tmp_path):
    path, sources, sentinel = snapshot
    out = tmp_path / "imported.safetensors"
    assert main(["import", "--pkl", str(path), "--out", str(out)]) == 0
    assert not sentinel.exists()  # module_src was never executed
    for key, source in sources.items():
        imported = styleforge.load(out, key=key)
        expected = source.state_dict()
        assert imported.state_dict().keys() == expected.keys()
        for name, value in expected.items():
            assert torch.equal(imported.state_dict()[name], value), f"{key}.{name}"
    G = styleforge.load(out)  # G_ema by default
    z = torch.randn(3, G.z_dim)
    c = torch.zeros([3, 0])
    assert torch.equal(G(z, c, truncation_psi=0.7, noise_mode="const"),
                       sources["G_ema"](z, c, truncation_psi=0.7, noise_mode="const"))
    assert G.generate([0, 1]).shape == (2, 16, 16, 3)


class _Payload:
    def __init__(self, func, arg):
        self.func, self.arg = func, arg

    def __reduce__(self):
        return self.func, (self.arg,)


@pytest.mark.parametrize("func", [os.system, builtins.exec, builtins.eval])
def test_code_execution_payloads_are_refused_without_running(tmp_path, official_globals, func):
    sentinel = tmp_path / "code-ran"
    command = f"touch {sentinel}" if func is os.system else f"open({str(sentinel)!r}, 'w').close()"
    path = official_pickle(tmp_path / "evil.pkl", official_globals, sentinel, G=_Payload(func, command))
    with pytest.raises(UserError, match=func.__name__):
        import_official_pickle(path, tmp_path / "out.safetensors")
    assert not sentinel.exists() and not (tmp_path / "out.safetensors").exists()


def test_a_payload_inside_tensor_bytes_is_refused(tmp_path, official_globals):
    # torch.storage._load_from_bytes would torch.load these bytes with weights_only=False.
    from torch.storage import _load_from_bytes

    sentinel = tmp_path / "code-ran"
    data = pickle.dumps(_Payload(os.system, f"touch {sentinel}"), protocol=2)
    buffer = io.BytesIO()
    pickle.Pickler(buffer, protocol=3).dump({"G": _Payload(_load_from_bytes, data)})
    (tmp_path / "evil.pkl").write_bytes(buffer.getvalue())
    with pytest.raises(UserError, match="not a readable network pickle"):
        import_official_pickle(tmp_path / "evil.pkl", tmp_path / "out.safetensors")
    assert not sentinel.exists()


class Generator(torch.nn.Module):
    """A bare module tree under the official class name (what EqGAN-SA's pickles hold)."""


def official_module_tree(state: dict, init_kwargs: dict) -> torch.nn.Module:
    """Modules nested along the official parameter names, holding the tensors as buffers."""
    root = Generator()
    root.init_kwargs = init_kwargs
    for name, value in state.items():
        *path, leaf = name.split(".")
        module = root
        for part in path:
            if part not in module._modules:
                module.add_module(part, torch.nn.Module())
            module = module._modules[part]
        module.register_buffer(leaf, value.clone())
    return root


def test_eqgan_sa_cat_model_format_imports(tmp_path, official_globals):
    from studio_networks import tiny_sel_generator
    from tools_networks import eqgan_official_state

    from styleforge.networks.heatmaps import sample_heatmap_spec

    ours = tiny_sel_generator()
    synthesis_kwargs = {k: v for k, v in ours.init_kwargs["synthesis_kwargs"].items() if k != "use_sel"}
    kwargs = dict(ours.init_kwargs, use_sel=True, config_kwargs={}, synthesis_kwargs=synthesis_kwargs)
    tree = official_module_tree(eqgan_official_state(ours), kwargs)
    assert any(name.startswith("synthesis.hm_conv0_b8") for name, _ in tree.named_buffers())
    sentinel = tmp_path / "code-ran"
    path = official_pickle(tmp_path / "cat.pkl", official_globals, sentinel, G_ema=tree)
    out = tmp_path / "cat.safetensors"
    assert main(["import", "--pkl", str(path), "--out", str(out)]) == 0
    assert not sentinel.exists()
    G = styleforge.load(out)
    z, spec = torch.randn(2, G.z_dim), sample_heatmap_spec(2)
    assert torch.equal(G(z, None, noise_mode="const", centres=spec), ours(z, None, noise_mode="const", centres=spec))


def test_not_a_pickle_is_a_user_error(tmp_path):
    (tmp_path / "x.pkl").write_bytes(b"garbage")
    with pytest.raises(UserError, match="x.pkl"):
        import_official_pickle(tmp_path / "x.pkl", tmp_path / "out.safetensors")
    with pytest.raises(UserError, match="no such file"):
        import_official_pickle(tmp_path / "missing.pkl", tmp_path / "out.safetensors")
