"""Import of TensorFlow-era pickles (StyleGAN2, StyleGAN v1, ProGAN): pickles in the exact TF format
(tf_pickles.py: official variable names and shapes at 16 px), imported through the CLI, against the
official graphs built by hand from the same numbers (tf_reference.py), and against the outputs of the
official TF code itself on those numbers (tests/official/data/tf_official.npz, made by scripts/reference_tf.py)."""

from pathlib import Path

import numpy as np
import pytest
import tf_reference as ref
import torch
import torch.nn.functional as F
from tf_pickles import FAMILIES, Numbers, install_network_class, labels, tf_pickle, tf_value, variables_of, write

import styleforge
from styleforge.cli import main
from styleforge.errors import UserError
from styleforge.official.importer import TF_CONVERTERS, describe, import_official_pickle
from styleforge.official.tf import TFNetwork

OFFICIAL = Path(__file__).parent / "data" / "tf_official.npz"
TOL = dict(rtol=1e-3, atol=1e-3)  # float32 against float64; pixel norms amplify the rounding of small pixels


@pytest.fixture
def sentinel(tmp_path):
    """The file that the pickles' build_module_src would create if anything executed it."""
    yield tmp_path / "code-ran"
    assert not (tmp_path / "code-ran").exists(), "build_module_src was executed"


def imported(tmp_path, family, sentinel, monkeypatch, **kwargs):
    install_network_class(monkeypatch, FAMILIES[family][0])
    path, nets = tf_pickle(tmp_path / f"{family}.pkl", family, sentinel, **kwargs)
    out = tmp_path / f"{family}.safetensors"
    assert main(["import", "--pkl", str(path), "--out", str(out)]) == 0
    return out, {key: (variables_of(net), kw) for key, (net, kw) in nets.items()}


def generate(G, z, c=None):
    c = None if c is None else torch.as_tensor(c)
    return G(torch.as_tensor(z, dtype=torch.float32), c, noise_mode="const").double()


REFERENCE_G = {
    "stylegan2": ref.stylegan2_generator,
    "stylegan2-ada": ref.stylegan2_generator,
    "stylegan1": ref.stylegan1_generator,
    "progan": ref.progan_generator,
}


@pytest.mark.parametrize("family", list(FAMILIES))
def test_imported_generators_give_the_official_images(tmp_path, sentinel, monkeypatch, family):
    out, nets = imported(tmp_path, family, sentinel, monkeypatch)
    z = Numbers(7)(3, nets["G"][1]["latent_size"])
    for key in ("G", "G_ema"):  # Gs becomes G_ema; the two hold different numbers
        variables, kw = nets[key]
        G = styleforge.load(out, key=key)
        assert G.img_resolution == 16 and G.z_dim == kw["latent_size"] and G.c_dim == kw["label_size"]
        c = labels(kw, 3)
        expected = REFERENCE_G[family](variables, kw, z, **({"c": c} if c is not None else {}))
        assert expected.abs().mean() > 0.05  # images of substance, not a vanishing signal
        torch.testing.assert_close(generate(G, z, c), expected, **TOL)


@pytest.mark.parametrize("case, family, key, kwargs", [
    ("stylegan2_G_skip", "stylegan2", "G_ema", {}),
    ("stylegan2_G_resnet", "stylegan2", "G_ema", {"architecture": "resnet"}),
    ("stylegan2_D", "stylegan2", "D", {}),
    ("stylegan2_ada_G", "stylegan2-ada", "G_ema", {}),
    ("stylegan2_ada_D", "stylegan2-ada", "D", {}),
    ("stylegan1_G_auto", "stylegan1", "G_ema", {}),
    ("stylegan1_G_True", "stylegan1", "G_ema", {"fused_scale": True}),
    ("stylegan1_G_False", "stylegan1", "G_ema", {"fused_scale": False}),
    ("stylegan1_D_auto", "stylegan1", "D", {}),
    ("stylegan1_D_True", "stylegan1", "D", {"fused_scale": True}),
    ("progan_G_True", "progan", "G_ema", {}),
    ("progan_G_False", "progan", "G_ema", {"fused_scale": False}),
    ("progan_D_True", "progan", "D", {}),
    ("progan_D_False", "progan", "D", {"fused_scale": False}),
])
def test_imported_networks_give_the_official_tf_codes_outputs(tmp_path, sentinel, monkeypatch, case, family, key,
                                                              kwargs):
    official = np.load(OFFICIAL)
    which = "g_kwargs" if key == "G_ema" else "d_kwargs"
    out, nets = imported(tmp_path, family, sentinel, monkeypatch, **{which: kwargs})
    net, kw = styleforge.load(out, key=key), nets[key][1]
    if key == "G_ema":
        got = generate(net, official["z"], labels(kw, len(official["z"])))
    else:
        c = labels(kw, len(official["images"]))
        got = net(torch.as_tensor(official["images"]), None if c is None else torch.as_tensor(c)).double()
    torch.testing.assert_close(got, torch.as_tensor(official[case], dtype=torch.float64), **TOL)


@pytest.mark.parametrize("family, g_kwargs", [
    ("stylegan1", {"fused_scale": True}), ("stylegan1", {"fused_scale": False}), ("progan", {"fused_scale": False}),
    ("stylegan2", {"architecture": "resnet"}),
])
def test_generator_variants_map(tmp_path, sentinel, monkeypatch, family, g_kwargs):
    """The official transposed convolution (fused_scale) and nearest + conv store their kernels differently;
    both land as the same images (StyleGAN v1 fuses from 128 px on under 'auto'). StyleGAN2's resnet G has
    upsampling 1x1 skip convolutions."""
    out, nets = imported(tmp_path, family, sentinel, monkeypatch, g_kwargs=g_kwargs)
    variables, kw = nets["G_ema"]
    z = Numbers(7)(3, kw["latent_size"])
    expected = REFERENCE_G[family](variables, kw, z, **{k: v for k, v in g_kwargs.items() if k == "fused_scale"})
    torch.testing.assert_close(generate(styleforge.load(out), z), expected, **TOL)


@pytest.mark.parametrize("family, d_kwargs", [("stylegan1", {}), ("progan", {}), ("progan", {"fused_scale": False})])
def test_imported_progressive_discriminators_give_the_official_scores(tmp_path, sentinel, monkeypatch, family,
                                                                      d_kwargs):
    out, nets = imported(tmp_path, family, sentinel, monkeypatch, d_kwargs=d_kwargs)
    variables, kw = nets["D"]
    img = Numbers(8)(8, 3, 16, 16)
    down = "Conv1_down" if d_kwargs.get("fused_scale", True) else "Conv1"
    expected = ref.progressive_discriminator(variables, kw, img, down=down, blur=family == "stylegan1",
                                             fused_scale=d_kwargs.get("fused_scale", family == "progan" or "auto"))
    D = styleforge.load(out, key="D")
    torch.testing.assert_close(D(torch.as_tensor(img)).double(), expected, **TOL)


def test_stylegan2_discriminator_tensors_land_transposed(tmp_path, sentinel, monkeypatch):
    out, nets = imported(tmp_path, "stylegan2", sentinel, monkeypatch)
    v, kw = nets["D"]
    state = styleforge.load(out, key="D").state_dict()
    assert state["b16.conv1.weight"].shape == (16, 8, 3, 3)  # HWIO [3, 3, 8, 16] -> OIHW
    np.testing.assert_array_equal(state["b16.conv1.weight"].numpy(), v["16x16/Conv1_down/weight"].transpose(3, 2, 0, 1))
    np.testing.assert_array_equal(state["b8.skip.weight"].numpy(), v["8x8/Skip/weight"].transpose(3, 2, 0, 1))
    np.testing.assert_array_equal(state["b4.fc.weight"].numpy(), v["4x4/Dense0/weight"].T)
    np.testing.assert_array_equal(state["b4.out.bias"].numpy(), v["Output/bias"])
    assert styleforge.load(out, key="D")(torch.zeros(2, 3, 16, 16)).shape == (2, 1)


def tf_network(stand_in, changed: str | None = None) -> TFNetwork:
    """The importer's TFNetwork for a stand-in, the variable `changed` (full name) shifted by 0.5."""
    state = dict(stand_in.state)
    if "components" in state:
        state["components"] = {key: tf_network(comp, changed[len(key) + 1:] if changed and
                                               changed.startswith(key + "/") else None)
                               for key, comp in state["components"].items()}
    state["variables"] = [(k, tf_value(v + 0.5) if k == changed else v) for k, v in state["variables"]]
    net = TFNetwork.__new__(TFNetwork)
    net.__setstate__(state)
    return net


@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize("key", ["G", "D"])
def test_every_variable_lands(tmp_path, family, key):
    """Changing any one TF variable changes the converted network (or, for a growing network's lod, is
    refused): every variable has its place."""
    stand_in, _ = FAMILIES[family][1 if key == "G" else 2](Numbers(0), tmp_path / "code-ran")
    convert = TF_CONVERTERS[stand_in.state["build_func_name"]]
    base = convert(tf_network(stand_in)).state_dict()
    for name in variables_of(stand_in):
        try:
            changed = convert(tf_network(stand_in, name)).state_dict()
        except UserError as e:
            assert "lod" in name and "lod" in str(e)
            continue
        assert any(not torch.equal(base[k], changed[k]) for k in base), f"{family} {key}: {name} did not land"


def test_progan_d_can_pool_after_the_activation():
    """The official ProGAN D without fused_scale pools after the leaky ReLU; the option keeps the parameters
    and changes only where the pooling happens (the default stays conv + pooling, then activation)."""
    from styleforge.registry import DISCRIMINATORS

    torch.manual_seed(0)
    default = DISCRIMINATORS.get("progan")(img_resolution=8, channel_base=64, channel_max=8)
    pooled = DISCRIMINATORS.get("progan")(img_resolution=8, channel_base=64, channel_max=8, pool_after_activation=True)
    pooled.load_state_dict(default.state_dict())
    block, x = default.b8, torch.randn(2, 8, 8, 8)
    conv = block.conv1
    pre = F.conv2d(block.conv0(x), conv.weight * conv.weight_gain, conv.bias, padding=1)
    act = F.leaky_relu(pre, 0.2) * 2**0.5
    torch.testing.assert_close(pooled.b8(x), F.avg_pool2d(act, 2))
    torch.testing.assert_close(block(x), F.leaky_relu(F.avg_pool2d(pre, 2), 0.2) * 2**0.5)
    assert not torch.allclose(pooled.b8(x), block(x), atol=1e-3)


@pytest.mark.parametrize("family, g_kwargs, message", [
    ("stylegan2", {"fmap_decay": 0.5}, "fmap_decay=0.5 is not supported"),
    ("stylegan1", {"use_instance_norm": False}, "use_instance_norm=False is not supported"),
    ("progan", {"use_pixelnorm": False}, "use_pixelnorm=False is not supported"),
    ("stylegan2", {"brand_new_option": 3}, "unknown build argument 'brand_new_option'"),
])
def test_build_arguments_our_networks_lack_are_refused(tmp_path, sentinel, monkeypatch, family, g_kwargs, message):
    install_network_class(monkeypatch, FAMILIES[family][0])
    path, _ = tf_pickle(tmp_path / "x.pkl", family, sentinel, g_kwargs=g_kwargs)
    with pytest.raises(UserError, match=message):
        import_official_pickle(path, tmp_path / "out.safetensors")
    assert not (tmp_path / "out.safetensors").exists()


def test_a_tf_pickle_of_an_unknown_network_is_refused(tmp_path, sentinel, monkeypatch, capsys):
    install_network_class(monkeypatch, "dnnlib.tflib.network")
    path, nets = tf_pickle(tmp_path / "x.pkl", "stylegan2", sentinel)
    D = nets["D"][0]
    D.state["build_func_name"] = "D_stylegan"  # config B-D's progressive D
    write(path, (nets["G"][0], D, nets["G_ema"][0]))
    out = tmp_path / "out.safetensors"
    assert main(["import", "--pkl", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'D' is a TF network built by D_stylegan" in err
    assert not out.exists()


def test_list_describes_a_tf_pickle_without_importing(tmp_path, sentinel, monkeypatch, capsys):
    install_network_class(monkeypatch, "dnnlib.tflib.network")
    path, _ = tf_pickle(tmp_path / "ffhq.pkl", "stylegan1", sentinel)
    assert main(["import", "--list", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("StyleGAN v1 (TensorFlow)")
    assert lines[1] == "keys: G, D, G_ema"
    assert "TF G_style: 16x16, z_dim 16, w_dim 16, c_dim 0" in lines[2]
    assert "TF D_basic: 16x16" in lines[3]
    assert describe(path) == lines
    assert list(tmp_path.iterdir()) == [path]  # nothing written
