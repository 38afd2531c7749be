"""Bad and malicious input to `styleforge import`: one-line errors, no output file, no code run.

Malicious pickles reach every path the unpickler opens: numpy's array reconstruction, a TF network's
state, the TF Network class itself (torch.nn members' states: test_official_eqgan.py; tensor bytes and
persistent objects: test_tools_import.py)."""

import collections
import os
import pickle

import numpy as np
import pytest
import torch
from official_pickles import Payload
from tf_pickles import Network, install_network_class, tf_pickle, write
from tools_networks import tiny_generator

from styleforge.cli import main
from styleforge.errors import UserError
from styleforge.official.importer import import_official_pickle

NUMPY_CORE = np.core.multiarray if not hasattr(np, "_core") else np._core.multiarray


def run_import(tmp_path, path, capsys) -> str:
    """The CLI's error line; checks that it is one line and that nothing was written."""
    out = tmp_path / "out.safetensors"
    assert main(["import", "--pkl", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(path) in err
    assert not out.exists()
    return err


def test_a_truncated_pickle(tmp_path, monkeypatch, capsys):
    install_network_class(monkeypatch, "dnnlib.tflib.network")
    path, _ = tf_pickle(tmp_path / "full.pkl", "stylegan2", tmp_path / "code-ran")
    (tmp_path / "cut.pkl").write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert "ends too early (truncated file?)" in run_import(tmp_path, tmp_path / "cut.pkl", capsys)


def test_a_plain_state_dict(tmp_path, capsys):
    with open(tmp_path / "state.pkl", "wb") as f:
        pickle.dump(tiny_generator().state_dict(), f)
    err = run_import(tmp_path, tmp_path / "state.pkl", capsys)
    assert "holds no networks (keys: synthesis.b4.const, " in err and "(56 keys)); expected G, D or G_ema" in err


def test_a_torch_save_checkpoint_of_another_framework(tmp_path, capsys):
    torch.save({"g_ema": tiny_generator().state_dict(), "args": {"size": 16}}, tmp_path / "rosinality.pt")
    assert "zip archive" in run_import(tmp_path, tmp_path / "rosinality.pt", capsys)
    torch.save({"g_ema": {}}, tmp_path / "old.pt", _use_new_zipfile_serialization=False)
    assert "torch.save file of the old format" in run_import(tmp_path, tmp_path / "old.pt", capsys)


def test_a_single_tf_network_and_other_objects(tmp_path, monkeypatch, capsys):
    install_network_class(monkeypatch, "dnnlib.tflib.network")
    _, nets = tf_pickle(tmp_path / "x.pkl", "stylegan2", tmp_path / "code-ran")
    write(tmp_path / "gs.pkl", nets["G_ema"][0])
    assert "holds one TF network ('G'); expected the tuple (G, D, Gs)" in run_import(tmp_path, tmp_path / "gs.pkl",
                                                                                     capsys)
    write(tmp_path / "list.pkl", [1, 2])
    assert "holds a list" in run_import(tmp_path, tmp_path / "list.pkl", capsys)


class NumpyReduce:
    """Pickles as numpy's array reconstructor called with the given arguments."""

    def __init__(self, *args):
        self.args = args

    def __reduce__(self):
        return NUMPY_CORE._reconstruct, self.args


@pytest.mark.parametrize("payload, message", [
    (lambda s: NumpyReduce(Payload(os.system, f"touch {s}"), (0,), b"b"), "system"),
    (lambda s: NumpyReduce(collections.OrderedDict, (0,), b"b"), "not a plain ndarray"),
    (lambda s: np.array([Payload(os.system, f"touch {s}")], dtype=object), "numpy array of Python objects"),
])
def test_payloads_inside_numpy_reduces_are_refused(tmp_path, monkeypatch, payload, message):
    install_network_class(monkeypatch, "dnnlib.tflib.network")
    sentinel = tmp_path / "code-ran"
    _, nets = tf_pickle(tmp_path / "x.pkl", "stylegan2", sentinel)
    G = nets["G"][0]
    G.state["variables"] = [*G.state["variables"], ("evil", payload(sentinel))]
    path = write(tmp_path / "evil.pkl", (G, nets["D"][0], nets["G_ema"][0]))
    with pytest.raises(UserError, match=message):
        import_official_pickle(path, tmp_path / "out.safetensors")
    assert not sentinel.exists() and not (tmp_path / "out.safetensors").exists()


@pytest.mark.parametrize("where", ["static_kwargs", "components", "variable name"])
def test_payloads_inside_a_tf_networks_state_are_refused(tmp_path, monkeypatch, where):
    install_network_class(monkeypatch, "dnnlib.tflib.network")
    sentinel = tmp_path / "code-ran"
    _, nets = tf_pickle(tmp_path / "x.pkl", "stylegan2", sentinel)
    Gs, evil = nets["G_ema"][0], Payload(os.system, f"touch {sentinel}")
    if where == "static_kwargs":
        Gs.state["static_kwargs"]["resolution"] = evil
    elif where == "components":
        Gs.state["components"]["synthesis"] = evil
    else:
        Gs.state["variables"][0] = (evil, Gs.state["variables"][0][1])
    path = write(tmp_path / "evil.pkl", (nets["G"][0], nets["D"][0], Gs))
    with pytest.raises(UserError, match="system"):
        import_official_pickle(path, tmp_path / "out.safetensors")
    assert not sentinel.exists()


class CallsNetwork:
    """Pickles as a call Network('x'), where a network pickle only hands Network its state."""

    def __reduce__(self):
        return Network, ("x",)


def test_the_tf_network_class_is_never_called(tmp_path, monkeypatch):
    install_network_class(monkeypatch, "tfutil")
    path = write(tmp_path / "x.pkl", (CallsNetwork(), CallsNetwork(), CallsNetwork()))
    with pytest.raises(UserError, match="creates a TF Network with arguments"):
        import_official_pickle(path, tmp_path / "out.safetensors")


def test_a_theano_era_progan_network_is_named(tmp_path, monkeypatch):
    install_network_class(monkeypatch, "tfutil")
    old = Network({"build_func_spec": {"func": "G_paper"}, "param_values": []})
    path = write(tmp_path / "x.pkl", (old, old, old))
    with pytest.raises(UserError, match="Theano-era ProGAN"):
        import_official_pickle(path, tmp_path / "out.safetensors")
