"""Studio settings and rendering: checked values, the same pixels as `generate`, mixing, interpolation, every
scale, and `styleforge generate --settings`."""

import json
import shlex

import numpy as np
import pytest
import torch
from studio_networks import multiscale_generator, png_pixels, tiny_sel_generator
from tools_networks import tiny_generator

from styleforge.cli import main
from styleforge.errors import UserError
from styleforge.images import save_image, to_uint8
from styleforge.inference.generate import generate
from styleforge.inference.interpolation import slerp
from styleforge.inference.network_info import describe
from styleforge.inference.render import default_heatmaps, render, settings_ws
from styleforge.inference.seeds import seeds_to_z
from styleforge.inference.settings import (
    Heatmaps,
    ImageSettings,
    Interpolation,
    StyleMix,
    parse_settings,
    settings_document,
)
from styleforge.networks.persistence import save_network


@pytest.fixture(scope="module")
def G():
    return tiny_generator()


def test_settings_round_trip_through_json(G):
    info = describe(G)
    settings = ImageSettings(seed=7, psi=0.6, cutoff=3, noise_mode="random", mix=StyleMix(9, 1, 4),
                             interp=Interpolation(11, 0.25, "w"))
    assert parse_settings(json.loads(json.dumps(settings.to_json())), info) == settings
    assert parse_settings({"seed": 0}, info) == ImageSettings(seed=0)


@pytest.mark.parametrize("bad, message", [
    ({"psi": 0.5}, "'seed' is missing"),
    ({"seed": -1}, r"seed -1: out of range"),
    ({"seed": 2**32}, r"seed 4294967296: out of range"),
    ({"seed": 1.5}, "seed: expected an integer"),
    ({"seed": True}, "seed: expected an integer"),
    ({"seed": 1, "psi": 2.5}, "psi 2.5: out of range"),
    ({"seed": 1, "psi": "a"}, "psi: expected a number"),
    ({"seed": 1, "cutoff": 0}, "cutoff 0: out of range"),
    ({"seed": 1, "cutoff": 7}, "cutoff 7: out of range"),
    ({"seed": 1, "class": 0}, "unconditional"),
    ({"seed": 1, "noise_mode": "loud"}, "noise_mode"),
    ({"seed": 1, "mix": {"seed": 2, "layers": [0, 6]}}, "mix.layers last 6: out of range"),
    ({"seed": 1, "mix": {"seed": 2, "layers": [4, 2]}}, "mix.layers last 2: out of range"),
    ({"seed": 1, "mix": {"seed": 2, "layers": [1]}}, "mix.layers: expected a list of 2"),
    ({"seed": 1, "mix": {"seed": -2, "layers": [0, 1]}}, "mix.seed -2"),
    ({"seed": 1, "interp": {"seed": 2, "t": 1.5}}, "interp.t 1.5: out of range"),
    ({"seed": 1, "interp": {"seed": 2, "t": 0.5, "space": "x"}}, "interp.space"),
    ({"seed": 1, "heatmaps": {"centres": [], "sigmas": []}}, "not an EqGAN-SA generator"),
    ({"seed": 1, "sead": 2}, r"unknown keys \['sead'\]"),
    ([1, 2], "expected a JSON object"),
])
def test_bad_settings_name_the_value(G, bad, message):
    with pytest.raises(UserError, match=message):
        parse_settings(bad, describe(G))


def test_conditional_networks_need_a_class_in_range():
    info = describe(tiny_generator(c_dim=3))
    assert parse_settings({"seed": 0, "class": 2}, info).class_idx == 2
    for bad, message in (({"seed": 0}, "conditional, name a class 0..2"), ({"seed": 0, "class": 3}, "class 3")):
        with pytest.raises(UserError, match=message):
            parse_settings(bad, info)


@pytest.mark.parametrize("noise_mode", ["const", "random"])
def test_plain_settings_give_the_pixels_of_generate(noise_mode):
    G = tiny_generator(c_dim=3)
    settings = ImageSettings(seed=42, psi=0.7, cutoff=4, class_idx=1, noise_mode=noise_mode)
    expected = generate(G, [42], psi=0.7, truncation_cutoff=4, class_idx=1, noise_mode=noise_mode)[0]
    assert np.array_equal(render(G, settings).image, expected)


def test_mixing_takes_exactly_the_listed_layers_from_the_second_seed(G):
    settings = ImageSettings(seed=3, psi=0.8, mix=StyleMix(seed=8, first=2, last=4))
    ws = settings_ws(G, settings, torch.device("cpu"))[0]  # [num_ws, w_dim]
    base = settings_ws(G, ImageSettings(seed=3, psi=0.8), torch.device("cpu"))[0]
    donor = settings_ws(G, ImageSettings(seed=8, psi=0.8), torch.device("cpu"))[0]
    for i in range(G.num_ws):
        assert torch.equal(ws[i], donor[i] if 2 <= i <= 4 else base[i])
    mixed = render(G, settings).image
    assert not np.array_equal(mixed, render(G, ImageSettings(seed=3, psi=0.8)).image)


@pytest.mark.parametrize("space", ["z", "w"])
def test_interpolation_runs_from_the_seed_to_the_other_seed(G, space):
    a, b = render(G, ImageSettings(seed=5)).image, render(G, ImageSettings(seed=6)).image
    at = lambda t: render(G, ImageSettings(seed=5, interp=Interpolation(6, t, space))).image  # noqa: E731
    assert np.array_equal(at(0.0), a)
    assert np.abs(at(1.0).astype(int) - b).max() <= 1
    middle = at(0.5)
    assert not np.array_equal(middle, a) and not np.array_equal(middle, b)
    ws = settings_ws(G, ImageSettings(seed=5, interp=Interpolation(6, 0.5, space)), "cpu")
    if space == "z":  # the middle of the great circle between the two z, then mapped
        z = seeds_to_z([5, 6], G.z_dim, "cpu")
        expected = G.mapping(slerp(z[:1], z[1:], 0.5), torch.zeros([1, 0]))
    else:  # the average of the ends' ws
        expected = (settings_ws(G, ImageSettings(seed=5), "cpu") + settings_ws(G, ImageSettings(seed=6), "cpu")) / 2
    assert torch.allclose(ws, expected, atol=1e-6)


def test_every_scale_of_a_multiscale_generator():
    G = multiscale_generator()
    info = describe(G)
    assert info.multiscale and not info.spatial
    rendered = render(G, ImageSettings(seed=1))
    assert [s.shape[0] for s in rendered.scales] == [4, 8, 16]
    assert np.array_equal(rendered.image, to_uint8(G.synthesis(settings_ws(G, ImageSettings(seed=1), "cpu"),
                                                               noise_mode="const"))[0])
    assert not describe(tiny_generator()).multiscale


def test_heatmap_centres_of_an_eqgan_sa_generator():
    G = tiny_sel_generator()
    info = describe(G)
    assert info.spatial and info.centres_per_level == (1, 2, 4)
    drawn = render(G, ImageSettings(seed=3))
    assert drawn.settings.heatmaps == default_heatmaps(3) != default_heatmaps(4)  # each seed has its own
    assert np.array_equal(render(G, drawn.settings).image, drawn.image)  # given explicitly: the same pixels
    centres = drawn.settings.heatmaps.centres
    moved = Heatmaps((((-0.9, 0.9),),) + centres[1:], drawn.settings.heatmaps.sigmas)
    assert not np.array_equal(render(G, ImageSettings(seed=3, heatmaps=moved)).image, drawn.image)
    good = drawn.settings.heatmaps.to_json()
    assert parse_settings({"seed": 3, "heatmaps": good}, info).heatmaps == drawn.settings.heatmaps
    for change, message in [(lambda h: h["centres"][0][0].__setitem__(1, 1.5), "level 1 centre 0 x 1.5: out of range"),
                            (lambda h: h["centres"][1].pop(), "level 2 centres: expected a list of 2"),
                            (lambda h: h["sigmas"][2].__setitem__(0, 0), "level 3 sigma 0 0: out of range"),
                            (lambda h: h.pop("sigmas"), "heatmaps.sigmas: expected a list of 3")]:
        bad = json.loads(json.dumps(good))
        change(bad)
        with pytest.raises(UserError, match=message):
            parse_settings({"seed": 3, "heatmaps": bad}, info)


def test_generate_settings_redraws_the_saved_pixels(tmp_path, G):
    network = tmp_path / "G.safetensors"
    save_network(G, network)
    for name, settings in [("plain", ImageSettings(seed=12, psi=0.5, noise_mode="random")),
                           ("mixed", ImageSettings(seed=12, mix=StyleMix(4, 0, 2), interp=Interpolation(9, 0.3, "z")))]:
        image, settings_file = tmp_path / f"{name}.png", tmp_path / f"{name}.json"
        save_image(render(G, settings).image, image)
        doc = settings_document(settings, network, settings_file, image, "cpu")
        settings_file.write_text(json.dumps(doc))
        argv = shlex.split(doc["command"])
        assert argv[:2] == ["styleforge", "generate"] and main(argv[1:]) == 0
        assert np.array_equal(png_pixels(str(tmp_path / "regenerated" / f"{name}.png")), png_pixels(str(image)))
        # Plain settings also come with the flags-only command, which writes seed<NNNN>.png.
        assert ("seed_command" in doc) == (name == "plain")
        if name == "plain":
            assert main(shlex.split(doc["seed_command"])[1:]) == 0
            assert np.array_equal(png_pixels(str(tmp_path / "regenerated" / "seed0012.png")), png_pixels(str(image)))


def test_generate_settings_errors(tmp_path, capsys):
    network = tmp_path / "G.safetensors"
    save_network(tiny_generator(), network)
    base = ["generate", "--network", str(network), "--outdir", str(tmp_path), "--device", "cpu"]
    assert main(base) == 2 and "--seeds" in capsys.readouterr().err
    (tmp_path / "s.json").write_text('{"format": "styleforge.studio.v1", "settings": {"seed": 1}}')
    assert main(base + ["--settings", str(tmp_path / "s.json"), "--seeds", "3"]) == 2
    assert "leave out --seeds" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text('{"format": "styleforge.studio.v1", "settings": {"seed": 1, "psi": 9}}')
    assert main(base + ["--settings", str(tmp_path / "bad.json")]) == 2
    assert "psi 9: out of range" in capsys.readouterr().err
    (tmp_path / "other.json").write_text('{"seed": 1}')
    assert main(base + ["--settings", str(tmp_path / "other.json")]) == 2
    assert "not a studio settings file" in capsys.readouterr().err
    assert main(base + ["--settings", str(tmp_path / "missing.json")]) == 2
    assert "no such settings file" in capsys.readouterr().err
