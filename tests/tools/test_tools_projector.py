import numpy as np
import pytest
import torch
from PIL import Image
from tools_networks import tiny_generator

from styleforge.cli import main
from styleforge.errors import UserError
from styleforge.inference.generate import generate
from styleforge.metrics.vgg16 import VGG16
from styleforge.networks.persistence import save_network
from styleforge.tools import projector
from styleforge.tools.projector import (
    ProjectionSettings,
    learning_rate,
    make_distance,
    multiscale_mse,
    noise_regularization,
    project,
    render_ws,
)


def test_schedule_and_losses():
    s = ProjectionSettings(num_steps=100)
    assert learning_rate(0, s) == 0 and learning_rate(50, s) == pytest.approx(0.1)  # ramps up, holds
    assert learning_rate(99, s) < 0.01  # ramps down to ~0 at the end
    smooth = torch.ones(32, 32)
    assert noise_regularization([smooth]) > 100 * noise_regularization([torch.randn(32, 32)])
    a = torch.zeros(1, 3, 16, 16)
    assert multiscale_mse(a, a) == 0 and multiscale_mse(a, a + 1) == pytest.approx(2.0)  # 16 px and 8 px


def test_projection_recovers_a_generated_image():
    G = tiny_generator(noise_strength=0)  # noise-free, so the image is a function of w alone
    target, other = generate(G, [5, 6])
    settings = ProjectionSettings(num_steps=100, w_avg_samples=1000)
    result = project(G, target, w_plus=True, settings=settings, distance="mse", progress=False)
    assert result.ws_steps.shape == (100, G.num_ws, G.w_dim) and result.ws.shape == (1, G.num_ws, G.w_dim)
    error = np.abs(render_ws(G, result.ws)[0].astype(float) - target).mean()
    start_error = np.abs(render_ws(G, result.ws_steps[:1])[0].astype(float) - target).mean()
    assert error < 20 and error < 0.25 * start_error and error < 0.25 * np.abs(other.astype(float) - target).mean()
    assert result.distances[-1] < 0.05 * result.distances[0]


def test_cli_writes_the_official_outputs(tmp_path, monkeypatch):
    G = tiny_generator()
    save_network(G, tmp_path / "G.safetensors")
    Image.fromarray(generate(G, [3])[0]).resize((40, 30)).save(tmp_path / "target.jpg")
    out = tmp_path / "proj"

    def no_weights(device):
        raise UserError("the lpips feature network's weights are not available")

    monkeypatch.setattr(projector, "_lpips_embedder", no_weights)  # never download VGG16 in a test
    with pytest.warns(UserWarning, match="LPIPS"):
        assert main(["project", "--network", str(tmp_path / "G.safetensors"), "--target", str(tmp_path / "target.jpg"),
                     "--steps", "4", "--outdir", str(out), "--device", "cpu"]) == 0
    w = np.load(out / "projected_w.npz")["w"]
    assert w.shape == (1, G.num_ws, G.w_dim)
    proj = np.asarray(Image.open(out / "proj.png"))
    assert np.array_equal(proj, render_ws(G, torch.from_numpy(w))[0])  # the saved w reproduces proj.png
    assert np.asarray(Image.open(out / "target.png")).shape == (16, 16, 3)
    if (out / "proj.mp4").exists():
        import imageio.v2 as imageio

        reader = imageio.get_reader(out / "proj.mp4")
        assert reader.count_frames() == 4 and reader.get_data(0).shape == (16, 32, 3)


def test_lpips_distance_comes_from_the_metrics_lpips_network(tmp_path, monkeypatch):
    torch.manual_seed(0)
    torch.save(VGG16(with_classifier=False, with_lpips=True).state_dict(), tmp_path / "lpips.pth")
    monkeypatch.setenv("STYLEFORGE_LPIPS", str(tmp_path / "lpips.pth"))
    target = torch.rand(1, 3, 16, 16) * 255
    distance = make_distance(target, "lpips")
    assert distance(target) == 0
    other = (target.flip(3) + 0).requires_grad_(True)
    d = distance(other)
    d.backward()
    assert d > 0 and other.grad.abs().sum() > 0  # differentiable, so the projection can follow it
    with pytest.raises(UserError, match="LPIPS distance unavailable"):
        monkeypatch.setenv("STYLEFORGE_LPIPS", str(tmp_path / "missing.pth"))
        make_distance(target, "lpips")
