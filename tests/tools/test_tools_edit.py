import json

import numpy as np
import pytest
import torch
from PIL import Image
from studio_networks import tiny_sel_generator
from tools_networks import tiny_generator

import styleforge
from styleforge.cli import main
from styleforge.errors import UserError
from styleforge.images import to_uint8
from styleforge.inference.render import render
from styleforge.inference.seeds import seed_heatmap_spec, seeds_to_z
from styleforge.inference.settings import ImageSettings
from styleforge.networks.heatmaps import HeatmapSpec
from styleforge.networks.persistence import save_network
from styleforge.registry import GENERATORS
from styleforge.tools.heatmap_edit import Move, apply_moves, edit_heatmaps, parse_move


@pytest.fixture(scope="module")
def sel_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("net") / "sel.safetensors"
    save_network(tiny_sel_generator(), path)
    return path


def object_at(y: float, x: float) -> HeatmapSpec:
    """A compact object at (y, x): narrow blobs, the parts close around the centre."""
    c1 = torch.tensor([[[y, x]]])  # [1, 1, 2]
    c2 = c1 + 0.1 * torch.tensor([[[1.0, -1.0], [-1.0, 1.0]]])
    c3 = c1 + 0.15 * torch.tensor([[[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]]])
    return HeatmapSpec((c1, c2, c3), (torch.tensor([[0.1]]), torch.full([1, 2], 0.05), torch.full([1, 4], 0.05)))


def test_parse_move_and_its_errors():
    assert parse_move("0:0.2,-0.1") == Move(0, 0.2, -0.1)
    assert parse_move(" 2 : -1e-1,0") == Move(2, -0.1, 0.0)
    for bad in ("0:0.2", "0.2,0.1", "a:1,2", "0:1,2,3", "0:x,1", "0:nan,0"):
        with pytest.raises(UserError, match="--move"):
            parse_move(bad)
    with pytest.raises(UserError, match="level 3 does not exist"):
        parse_move("3:0.1,0.1")


def test_move_levels_and_the_xy_convention():
    """Level 0 shifts every centre, 1 only the two level-2 centres, 2 only the four level-3 ones; (dx, dy) adds
    dx to x (the centres' second coordinate) and dy to y (the first); moves add up."""
    spec = object_at(0.1, -0.2)
    moved = apply_moves(spec, [Move(0, 0.3, -0.2)])
    for before, after in zip(spec.centres, moved.centres):
        assert torch.allclose(after - before, torch.tensor([-0.2, 0.3]).expand_as(before))
    parts = apply_moves(spec, [Move(1, 0.1, 0.0), Move(1, 0.1, 0.05), Move(2, 0.0, 0.5)])
    assert torch.equal(parts.centres[0], spec.centres[0])
    assert torch.allclose(parts.centres[1] - spec.centres[1], torch.tensor([0.05, 0.2]).expand(1, 2, 2))
    assert torch.allclose(parts.centres[2] - spec.centres[2], torch.tensor([0.5, 0.0]).expand(1, 4, 2))
    assert all(torch.equal(a, b) for a, b in zip(parts.sigmas, spec.sigmas))


def test_moving_the_object_changes_the_image_where_it_was_and_went():
    """The SEL layers modulate features locally around the heatmap blobs, so moving an object changes the image
    near its old and new positions and little elsewhere. Measured property: the mass of |after - before| (over
    channels, 4 latents) lies mostly in the image half that holds both positions, on both axes (ratio > 1.5), and
    mirroring the object and its move mirrors that; random weights already show this (ratios about 2.5-6)."""
    torch.manual_seed(0)
    G = GENERATORS.get("stylegan2")(z_dim=32, w_dim=32, img_resolution=32, mapping_kwargs=dict(num_layers=2),
                                    synthesis_kwargs=dict(channel_base=512, channel_max=32, use_sel=True)).eval()
    ws = G.mapping(torch.randn(4, 32), None).detach()  # [4, num_ws, w_dim]

    def change(spec: HeatmapSpec, move: Move) -> torch.Tensor:
        spec = HeatmapSpec(tuple(c.expand(4, -1, -1) for c in spec.centres),
                           tuple(s.expand(4, -1) for s in spec.sigmas))  # the same object for all 4 latents
        with torch.no_grad():
            before = G.synthesis(ws, noise_mode="const", centres=spec)
            after = G.synthesis(ws, noise_mode="const", centres=apply_moves(spec, [move]))
        return (after - before).abs().sum(dim=(0, 1))  # [H, W]

    top_left = change(object_at(-0.5, -0.6), Move(0, dx=0.4, dy=0.0))  # x -0.6 -> -0.2 at y = -0.5: top left
    bottom_right = change(object_at(0.5, 0.6), Move(0, dx=-0.4, dy=0.0))
    for d, sign in ((top_left, 1), (bottom_right, -1)):
        left_over_right = (d[:, :16].sum() / d[:, 16:].sum()) ** sign
        top_over_bottom = (d[:16].sum() / d[16:].sum()) ** sign
        assert left_over_right > 1.5 and top_over_bottom > 1.5, (left_over_right, top_over_bottom)


def test_edit_cli_writes_the_files_and_after_is_G_with_the_moved_centres(sel_file, tmp_path):
    rc = main(["edit", "--network", str(sel_file), "--seed", "7", "--move", "0:0.2,-0.1", "--move", "1:0,0.4",
               "--trunc", "0.7", "--outdir", str(tmp_path), "--device", "cpu"])
    assert rc == 0
    before, after = (np.asarray(Image.open(tmp_path / f"{name}.png")) for name in ("before", "after"))
    assert np.array_equal(np.asarray(Image.open(tmp_path / "before_after.png")), np.concatenate([before, after], 1))
    record = json.loads((tmp_path / "edit.json").read_text())
    spec_before = seed_heatmap_spec(7)
    assert np.allclose(record["before"]["centres"][1], spec_before.centres[1][0])
    expected_level2 = spec_before.centres[1][0] + torch.tensor([-0.1 + 0.4, 0.2])  # object and parts moves, (y, x)
    assert np.allclose(record["after"]["centres"][1], expected_level2, atol=1e-6)
    # after.png is G drawn with the recorded centres; before.png is the studio's image of the seed.
    G = styleforge.load(sel_file)
    spec_after = HeatmapSpec(tuple(torch.tensor([c]) for c in record["after"]["centres"]),
                             tuple(torch.tensor([s]) for s in record["after"]["sigmas"]))
    ws = G.mapping(seeds_to_z([7], G.z_dim, "cpu"), None, truncation_psi=0.7)
    assert np.array_equal(after, to_uint8(G.synthesis(ws, noise_mode="const", centres=spec_after))[0])
    assert np.array_equal(before, render(G, ImageSettings(seed=7, psi=0.7)).image)
    assert not np.array_equal(before, after)


def test_a_zero_move_changes_nothing_and_leaves_the_rng_alone():
    G = tiny_sel_generator()
    for noise_mode in ("const", "random"):
        state = torch.get_rng_state()
        before, after, spec_before, spec_after = edit_heatmaps(G, 3, [(0, 0.0, 0.0), (2, 0.0, 0.0)],
                                                               noise_mode=noise_mode)
        assert torch.equal(state, torch.get_rng_state())
        assert np.array_equal(before, after) and before.shape == (16, 16, 3)
        assert all(torch.equal(a, b) for a, b in zip(spec_before.centres, spec_after.centres))


def test_edit_needs_heatmaps_and_valid_moves(tmp_path, capsys):
    with pytest.raises(UserError, match="no heatmaps"):
        edit_heatmaps(tiny_generator(), 0, [(0, 0.1, 0.0)])
    with pytest.raises(UserError, match="level 5"):
        edit_heatmaps(tiny_sel_generator(), 0, [(5, 0.1, 0.0)])
    save_network(tiny_generator(), tmp_path / "plain.safetensors")
    assert main(["edit", "--network", str(tmp_path / "plain.safetensors"), "--seed", "0", "--move", "0:0.1,0",
                 "--outdir", str(tmp_path / "out")]) == 2
    assert "no heatmaps" in capsys.readouterr().err
    assert main(["edit", "--network", str(tmp_path / "plain.safetensors"), "--seed", "0", "--move", "0:0.1",
                 "--outdir", str(tmp_path / "out")]) == 2
    assert "LEVEL:DX,DY" in capsys.readouterr().err


def test_generate_draws_an_eqgan_seed_with_its_own_heatmaps():
    """A seed names one EqGAN-SA image: generate (in any batch) gives edit's `before` image."""
    from styleforge.inference.generate import generate

    G = tiny_sel_generator()
    torch.manual_seed(123)
    batched = generate(G, [7, 8, 9])
    torch.manual_seed(456)
    alone = generate(G, [8])
    assert np.array_equal(batched[1], alone[0])
    before, _, _, _ = edit_heatmaps(G, 7, [])
    assert np.array_equal(batched[0], before)
