import numpy as np
import pytest
import torch
from tools_networks import tiny_generator

from styleforge.cli import main
from styleforge.errors import UserError
from styleforge.networks.persistence import save_network
from styleforge.tools.export import export_generator


def reference(G, z, c, psi):
    return G(z, c, truncation_psi=psi, noise_mode="const").numpy()


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
def test_torchscript_export_matches_pytorch_on_new_batches(tmp_path):
    G = tiny_generator()
    save_network(G, tmp_path / "G.safetensors")
    out = tmp_path / "G.pt"
    assert main(["export", "--network", str(tmp_path / "G.safetensors"), "--format", "torchscript",
                 "--out", str(out), "--trunc", "0.7", "--device", "cpu"]) == 0
    exported = torch.jit.load(str(out))
    z = torch.randn(5, G.z_dim)
    with torch.no_grad():
        diff = np.abs(exported(z).numpy() - reference(G, z, torch.zeros([5, 0]), 0.7)).max()
    assert diff <= 1e-4


def test_onnx_export_of_a_conditional_generator_matches_pytorch(tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    G = tiny_generator(c_dim=3)
    result = export_generator(G, tmp_path / "G.onnx", "onnx", psi=0.5)
    assert result.max_abs_diff <= 1e-4
    session = onnxruntime.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
    z = torch.randn(4, G.z_dim)
    c = torch.eye(3)[[0, 1, 2, 1]]
    (img,) = session.run(None, {"z": z.numpy(), "c": c.numpy()})
    with torch.no_grad():
        assert np.abs(img - reference(G, z, c, 0.5)).max() <= 1e-4


def test_export_refuses_random_noise_and_keeps_no_file_that_fails_the_check(tmp_path):
    G = tiny_generator()
    with pytest.raises(UserError, match="cannot be exported"):
        export_generator(G, tmp_path / "G.pt", "torchscript", noise_mode="random")
    with pytest.raises(UserError, match="differs from PyTorch"):
        export_generator(G, tmp_path / "G.pt", "torchscript", tolerance=-1.0)
    assert list(tmp_path.iterdir()) == []
