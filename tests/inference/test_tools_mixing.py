import numpy as np
import pytest
import torch
from PIL import Image
from tools_networks import tiny_generator

from styleforge.cli import main
from styleforge.errors import UserError
from styleforge.images import to_uint8
from styleforge.inference.generate import generate
from styleforge.inference.mixing import style_mixing_figure
from styleforge.inference.seeds import seeds_to_z
from styleforge.networks.persistence import save_network

ROWS, COLS, STYLES = [85, 100], [55, 821, 1789], [0, 1, 2]


def ws_of(G, seed, psi):
    return G.mapping(seeds_to_z([seed], G.z_dim, "cpu"), torch.zeros([1, 0]), truncation_psi=psi)[0]


def test_cell_takes_the_listed_styles_from_the_row_source():
    G = tiny_generator()
    psi = 0.8
    figure = style_mixing_figure(G, ROWS, COLS, STYLES, psi=psi)
    H = W = G.img_resolution
    assert figure.shape == (3 * H, 4 * W, 3)
    assert not figure[:H, :W].any()  # the corner is empty
    sources = generate(G, ROWS + COLS, psi=psi)
    for c in range(len(COLS)):
        assert np.array_equal(figure[:H, (c + 1) * W:(c + 2) * W], sources[len(ROWS) + c])
    for r, row_seed in enumerate(ROWS):
        assert np.array_equal(figure[(r + 1) * H:(r + 2) * H, :W], sources[r])
        for c, col_seed in enumerate(COLS):
            layer_source = torch.tensor([row_seed if i in STYLES else col_seed for i in range(G.num_ws)])
            ws = torch.stack([ws_of(G, int(s), psi)[i] for i, s in enumerate(layer_source)])  # built layer by layer
            expected = to_uint8(G.synthesis(ws[None], noise_mode="const"))[0]
            cell = figure[(r + 1) * H:(r + 2) * H, (c + 1) * W:(c + 2) * W]
            assert np.abs(cell.astype(int) - expected).max() <= 1
            assert not np.array_equal(cell, sources[r]) and not np.array_equal(cell, sources[len(ROWS) + c])


def test_cli_writes_the_figure_and_checks_styles(tmp_path):
    G = tiny_generator()
    save_network(G, tmp_path / "G.safetensors")
    out = tmp_path / "mix.png"
    assert main(["mix", "--network", str(tmp_path / "G.safetensors"), "--rows", "85,100", "--cols", "55,821,1789",
                 "--styles", "0-2", "--out", str(out), "--device", "cpu"]) == 0
    assert np.array_equal(np.asarray(Image.open(out)), style_mixing_figure(G, ROWS, COLS, STYLES))
    with pytest.raises(UserError, match="style layers 0..5"):
        style_mixing_figure(G, ROWS, COLS, [0, 6])
