import sys

import numpy as np
import pytest
import torch
from tools_networks import tiny_generator

from styleforge.cli import main
from styleforge.errors import UserError
from styleforge.images import make_grid, to_uint8
from styleforge.inference.generate import synthesize
from styleforge.inference.interpolation import latent_at, slerp
from styleforge.inference.seeds import seeds_to_z
from styleforge.networks.persistence import save_network
from styleforge.tools.video import interpolation_frames, keyframes, write_video


def test_slerp_keeps_the_norm_of_unit_vectors_and_hits_the_ends():
    a, b = torch.nn.functional.normalize(torch.randn(2, 2, 8), dim=-1)
    assert torch.allclose(slerp(a, b, 0.0), a, atol=1e-6) and torch.allclose(slerp(a, b, 1.0), b, atol=1e-6)
    assert torch.allclose(slerp(a, b, 0.3).norm(dim=-1), torch.ones(2), atol=1e-5)
    assert torch.allclose(slerp(a, a, 0.5), a, atol=1e-6)  # parallel: no division by zero


@pytest.mark.parametrize("space", ["z", "w"])
def test_latent_path_is_periodic_and_visits_each_cells_seeds(space):
    G = tiny_generator()
    seeds = list(range(6))
    c = torch.zeros([2, 0])
    keys = keyframes(G, seeds, 2, space, 1.0, c, torch.device("cpu"))
    assert keys.shape[:2] == (2, 3)
    assert torch.equal(latent_at(keys, 0.0, space), latent_at(keys, 1.0, space))
    z = seeds_to_z(seeds, G.z_dim, "cpu").reshape(2, 3, -1)  # cell i walks seeds[3i:3i+3]
    for j in range(3):
        expected = z[:, j] if space == "z" else G.mapping(z[:, j], c)
        assert torch.allclose(latent_at(keys, j / 3, space), expected, atol=1e-5)
    mid = latent_at(keys, 0.5, space)
    assert not torch.allclose(mid, keys[:, 1], atol=1e-3)


def test_frames_loop_and_cli_writes_the_requested_frame_count(tmp_path):
    imageio = pytest.importorskip("imageio.v2")
    pytest.importorskip("imageio_ffmpeg")
    G = tiny_generator()
    frames = list(interpolation_frames(G, list(range(8)), grid=(2, 2), num_frames=9, progress=False))
    assert len(frames) == 9 and frames[0].shape == (32, 32, 3)
    assert not np.array_equal(frames[0], frames[4])
    # The frame after the last (t = 1) is the first one again.
    c = torch.zeros([4, 0])
    keys = keyframes(G, list(range(8)), 4, "z", 1.0, c, torch.device("cpu"))
    after_last = to_uint8(synthesize(G, G.mapping(latent_at(keys, 9 / 9, "z"), c), "const"))
    assert np.array_equal(make_grid(after_last, cols=2), frames[0])
    save_network(G, tmp_path / "G.safetensors")
    out = tmp_path / "lerp.mp4"
    assert main(["video", "--network", str(tmp_path / "G.safetensors"), "--seeds", "0-7", "--grid", "2x2",
                 "--seconds", "1", "--fps", "6", "--space", "w", "--out", str(out), "--device", "cpu"]) == 0
    reader = imageio.get_reader(out)
    assert reader.count_frames() == 6 and reader.get_data(0).shape == (32, 32, 3)


def test_seeds_must_split_over_the_grid():
    with pytest.raises(UserError, match="split evenly"):
        keyframes(tiny_generator(), [0, 1, 2], 2, "z", 1.0, torch.zeros([2, 0]), torch.device("cpu"))


def test_missing_video_extra_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # as if not installed
    with pytest.raises(UserError, match=r"styleforge\[video\]"):
        write_video([], tmp_path / "x.mp4")
