import numpy as np
import pytest
import torch
from PIL import Image
from tools_networks import tiny_generator

import styleforge
from styleforge.cli import main
from styleforge.errors import UserError
from styleforge.networks.persistence import save_network
from styleforge.tools.generate import generate
from styleforge.tools.seeds import parse_grid, parse_int_list, seed_to_z


@pytest.fixture(scope="module")
def network_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("net") / "G.safetensors"
    save_network(tiny_generator(), path)
    return path


def test_parse_int_list_and_grid():
    assert parse_int_list("0-3,7,10-11") == [0, 1, 2, 3, 7, 10, 11]
    assert parse_grid("4x2") == (4, 2)
    for bad in ("3-1", "a", "1,,2"):
        with pytest.raises(UserError):
            parse_int_list(bad)
    with pytest.raises(UserError, match="COLUMNSxROWS"):
        parse_grid("4by2")


def test_seed_names_the_official_latent():
    # The official generate.py: z = np.random.RandomState(seed).randn(1, z_dim).
    assert np.array_equal(seed_to_z(42, 8), np.random.RandomState(42).randn(1, 8))


def test_generation_is_deterministic_per_seed_and_independent_of_batch(network_file):
    G = styleforge.load(network_file)
    a = G.generate([3, 5, 7], psi=0.7)
    b = generate(G, [7, 5], psi=0.7)
    assert a.shape == (3, 16, 16, 3) and a.dtype == np.uint8
    assert np.abs(a[2].astype(int) - b[0]).max() <= 1  # same seed -> same image, whatever its batch
    assert np.abs(a[1].astype(int) - b[1]).max() <= 1
    assert not np.array_equal(a[0], a[1])
    # Random noise is seeded by the image's seed, and the caller's RNG is left alone.
    torch.manual_seed(1)
    r1 = G.generate([5], noise_mode="random")
    state = torch.get_rng_state()
    r2 = G.generate([4, 5], noise_mode="random")
    assert torch.equal(state, torch.get_rng_state())
    assert np.array_equal(r1[0], r2[1])
    assert not np.array_equal(r1[0], G.generate([5], noise_mode="const")[0])


def test_truncation_pulls_towards_the_mean_image(network_file):
    G = styleforge.load(network_file)
    mean_image = G.synthesis(G.mapping.w_avg.expand(1, G.num_ws, -1), noise_mode="const")
    mean_image = (mean_image * 127.5 + 128).clamp(0, 255).permute(0, 2, 3, 1).numpy()
    full, zero = G.generate([9], psi=1.0), G.generate([9], psi=0.0)
    assert np.abs(zero.astype(float) - mean_image).max() <= 1
    assert np.abs(full.astype(float) - mean_image).mean() > 5


def test_cli_writes_the_same_pixels_as_the_api(network_file, tmp_path):
    rc = main(["generate", "--network", str(network_file), "--seeds", "0-2,10", "--trunc", "0.7",
               "--outdir", str(tmp_path), "--grid", "2x2", "--device", "cpu"])
    assert rc == 0
    expected = generate(styleforge.load(network_file), [0, 1, 2, 10], psi=0.7)
    for seed, image in zip([0, 1, 2, 10], expected):
        assert np.array_equal(np.asarray(Image.open(tmp_path / f"seed{seed:04d}.png")), image)
    grid = np.asarray(Image.open(tmp_path / "grid.png"))
    assert grid.shape == (32, 32, 3) and np.array_equal(grid[16:, 16:], expected[3])


def test_class_labels_are_checked(tmp_path, capsys):
    G = tiny_generator(c_dim=4)
    with pytest.raises(UserError, match="conditional"):
        generate(G, [0])
    with pytest.raises(UserError, match="out of range"):
        generate(G, [0], class_idx=4)
    assert not np.array_equal(generate(G, [0], class_idx=0), generate(G, [0], class_idx=1))
    with pytest.raises(UserError, match="unconditional"):
        generate(tiny_generator(), [0], class_idx=1)
    save_network(G, tmp_path / "cond.safetensors")
    assert main(["generate", "--network", str(tmp_path / "cond.safetensors"), "--seeds", "0",
                 "--outdir", str(tmp_path / "out")]) == 2
    assert "--class" in capsys.readouterr().err
