"""Import of official stylegan2-ada-pytorch pickles, built in the official format by official_pickles.py from
tiny networks whose parameter names are the official ones. No official source is involved."""

import builtins
import io
import os
import pickle

import pytest
import torch
from official_pickles import Payload, easy_dict, install_official_globals, official_pickle
from tools_networks import tiny_generator

import styleforge
from styleforge.cli import main
from styleforge.errors import UserError
from styleforge.official.importer import import_official_pickle
from styleforge.registry import DISCRIMINATORS


@pytest.fixture
def official_globals(monkeypatch):
    return install_official_globals(monkeypatch)


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
                           G=G, D=D, G_ema=G_ema, augment_pipe=None, training_set_kwargs=easy_dict({"resolution": 16}))
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
    assert styleforge.generate(G, [0, 1]).shape == (2, 16, 16, 3)


@pytest.mark.parametrize("func", [os.system, builtins.exec, builtins.eval])
def test_code_execution_payloads_are_refused_without_running(tmp_path, official_globals, func):
    sentinel = tmp_path / "code-ran"
    command = f"touch {sentinel}" if func is os.system else f"open({str(sentinel)!r}, 'w').close()"
    path = official_pickle(tmp_path / "evil.pkl", official_globals, sentinel, G=Payload(func, command))
    with pytest.raises(UserError, match=func.__name__):
        import_official_pickle(path, tmp_path / "out.safetensors")
    assert not sentinel.exists() and not (tmp_path / "out.safetensors").exists()


def test_a_payload_inside_tensor_bytes_is_refused(tmp_path, official_globals):
    # torch.storage._load_from_bytes would torch.load these bytes with weights_only=False.
    from torch.storage import _load_from_bytes

    sentinel = tmp_path / "code-ran"
    data = pickle.dumps(Payload(os.system, f"touch {sentinel}"), protocol=2)
    buffer = io.BytesIO()
    pickle.Pickler(buffer, protocol=3).dump({"G": Payload(_load_from_bytes, data)})
    (tmp_path / "evil.pkl").write_bytes(buffer.getvalue())
    with pytest.raises(UserError, match="not a readable network pickle"):
        import_official_pickle(tmp_path / "evil.pkl", tmp_path / "out.safetensors")
    assert not sentinel.exists()


def test_not_a_pickle_is_a_user_error(tmp_path):
    (tmp_path / "x.pkl").write_bytes(b"garbage")
    with pytest.raises(UserError, match="x.pkl"):
        import_official_pickle(tmp_path / "x.pkl", tmp_path / "out.safetensors")
    with pytest.raises(UserError, match="no such file"):
        import_official_pickle(tmp_path / "missing.pkl", tmp_path / "out.safetensors")
