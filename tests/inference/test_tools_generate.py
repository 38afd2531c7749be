import numpy as np
import pytest
import torch
from PIL import Image
from tools_networks import tiny_generator

import styleforge
from styleforge.cli import main
from styleforge.errors import UserError
from styleforge.images import to_uint8
from styleforge.inference.generate import generate
from styleforge.inference.seeds import parse_grid, parse_int_list, seed_to_z, seeds_to_z
from styleforge.networks.persistence import save_network
from styleforge.registry import GENERATORS


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
    a = styleforge.generate(G, [3, 5, 7], psi=0.7)
    b = generate(G, [7, 5], psi=0.7)
    assert a.shape == (3, 16, 16, 3) and a.dtype == np.uint8
    assert np.abs(a[2].astype(int) - b[0]).max() <= 1  # same seed -> same image, whatever its batch
    assert np.abs(a[1].astype(int) - b[1]).max() <= 1
    assert not np.array_equal(a[0], a[1])
    # Random noise is seeded by the image's seed, and the caller's RNG is left alone.
    torch.manual_seed(1)
    r1 = styleforge.generate(G, [5], noise_mode="random")
    state = torch.get_rng_state()
    r2 = styleforge.generate(G, [4, 5], noise_mode="random")
    assert torch.equal(state, torch.get_rng_state())
    assert np.array_equal(r1[0], r2[1])
    assert not np.array_equal(r1[0], styleforge.generate(G, [5], noise_mode="const")[0])


def test_truncation_pulls_towards_the_mean_image(network_file):
    G = styleforge.load(network_file)
    mean_image = G.synthesis(G.mapping.w_avg.expand(1, G.num_ws, -1), noise_mode="const")
    mean_image = (mean_image * 127.5 + 128).clamp(0, 255).permute(0, 2, 3, 1).numpy()
    full, zero = styleforge.generate(G, [9], psi=1.0), styleforge.generate(G, [9], psi=0.0)
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


def test_all_scales_writes_each_seeds_scales_side_by_side(network_file, tmp_path, capsys):
    torch.manual_seed(0)
    G = GENERATORS.create("msg-stylegan2", z_dim=12, w_dim=12, img_resolution=16, img_channels=3,
                          mapping_kwargs=dict(num_layers=2), synthesis_kwargs=dict(channel_base=128, channel_max=16))
    save_network(G, tmp_path / "msg.safetensors")
    rc = main(["generate", "--network", str(tmp_path / "msg.safetensors"), "--seeds", "0,5", "--trunc", "0.8",
               "--all-scales", "--outdir", str(tmp_path / "out")])
    assert rc == 0
    for seed in (0, 5):
        row = np.asarray(Image.open(tmp_path / "out" / f"seed{seed:04d}-scales.png"))
        ws = G.mapping(seeds_to_z([seed], 12, "cpu"), None, truncation_psi=0.8)
        scales = G.synthesis(ws, noise_mode="const", return_all_scales=True)  # 4x4, 8x8, 16x16
        assert row.shape == (16, 3 * 16, 3)
        for i, scale in enumerate(scales):  # each panel: the scale, every pixel repeated up to 16x16
            factor = 16 // scale.shape[-1]
            expected = to_uint8(scale)[0].repeat(factor, 0).repeat(factor, 1)
            assert np.array_equal(row[:, 16 * i:16 * (i + 1)], expected)
    with pytest.raises(UserError, match="MSG-StyleGAN"):
        generate(tiny_generator(), [0], all_scales=True)
    assert main(["generate", "--network", str(network_file), "--seeds", "0", "--all-scales",
                 "--outdir", str(tmp_path / "plain")]) == 2
    assert "--all-scales needs an MSG-StyleGAN network" in capsys.readouterr().err


def test_tools_default_to_the_truncation_the_model_was_trained_for(digits, tiny_options, tmp_path, capsys):
    """A StyleGAN v1 model's checkpoint says psi 0.7 on the first 8 ws; tools use it unless told otherwise."""
    from styleforge.inference.generate import default_truncation
    from styleforge.training import checkpoint as ckpt_io
    from styleforge.training.loop import Trainer

    options = {**tiny_options, "data": digits(16), "cfg": "stylegan1", "cbase": 128, "cmax": 16, "grow_batch": {},
               "kimg": 0.004, "map_layers": 1, "z_dim": 8, "w_dim": 8, "batch": 4}
    run_dir = Trainer(options, quiet=True).run()
    ckpt = ckpt_io.list_checkpoints(run_dir)[-1]
    assert default_truncation(ckpt) == (0.7, 8)
    out = {}
    for name, extra in (("default", []), ("psi1", ["--trunc", "1"]), ("explicit", ["--trunc", "0.7", "--trunc-cutoff",
                                                                                    "8"])):
        assert main(["generate", "--network", str(ckpt), "--seeds", "3", "--outdir", str(tmp_path / name), *extra]) == 0
        out[name] = np.asarray(Image.open(tmp_path / name / "seed0003.png"))
    assert np.array_equal(out["default"], out["explicit"]) and not np.array_equal(out["default"], out["psi1"])
    capsys.readouterr()
