"""TensorFlow-era network pickles for the import tests, written without TensorFlow.

`Network` pickles exactly as dnnlib.tflib.network.Network (or ProGAN's tfutil.Network) does: by
reference to that class, with the dict its __getstate__ returns (version, name, static_kwargs, components,
build_module_src, build_func_name, variables). The variables carry the names and shapes that the official
build functions create (NVlabs/stylegan2 training/networks_stylegan2.py G_main, G_mapping,
G_synthesis_stylegan2, D_stylegan2; NVlabs/stylegan training/networks_stylegan.py G_style, G_synthesis,
D_basic; progressive_growing_of_gans networks.py G_paper, D_paper), at a small size, filled with random
numbers. `build_module_src` is code that would create a file if anything executed it.
"""

from __future__ import annotations

import functools
import pickle
import sys
import types
from pathlib import Path

import numpy as np


class Network:
    """Pickles as dnnlib.tflib.network.Network (or tfutil.Network) does: class reference + __getstate__."""

    def __init__(self, state: dict):
        self.state = state

    def __getstate__(self) -> dict:
        return self.state


def install_network_class(monkeypatch, module: str) -> None:
    """Makes `Network` pickle as `<module>.Network` ('dnnlib.tflib.network' or 'tfutil')."""
    fake = types.ModuleType(module)
    fake.Network = Network
    monkeypatch.setattr(Network, "__module__", module)
    parts = module.split(".")
    for i in range(1, len(parts)):
        monkeypatch.setitem(sys.modules, ".".join(parts[:i]), types.ModuleType(".".join(parts[:i])))
    monkeypatch.setitem(sys.modules, module, fake)


def network(name: str, func: str, kwargs: dict, variables: dict, sentinel: Path, components=None,
            version: int = 4) -> Network:
    state = dict(version=version, name=name, static_kwargs=dict(kwargs), build_func_name=func,
                 build_module_src=f"open({str(sentinel)!r}, 'w').close()\n",
                 variables=[(k, tf_value(v)) for k, v in variables.items()])
    if version >= 3:
        state["components"] = dict(components or {})
    return Network(state)


def tf_value(value) -> np.ndarray | np.float32:
    """A variable's value as Session.run returns it: an array, or a numpy scalar for scalar variables."""
    value = np.asarray(value, dtype=np.float32)
    return value[()] if value.ndim == 0 else value


def write(path: Path, nets: tuple, protocol: int = 3) -> Path:
    with open(path, "wb") as f:
        pickle.dump(nets, f, protocol=protocol)
    return path


class Numbers:
    """Variables by shape, each call new numbers (biases and noise strengths are asked for small, so that
    images stay in a sane range). Plain arithmetic, no random generator: the same on every numpy version, so
    that the official code's outputs recorded in tests/official/data stay valid."""

    def __init__(self, seed: int):
        self.seed, self.calls = seed, 0

    def __call__(self, *shape: int, scale: float = 1.0) -> np.ndarray:
        self.calls += 1
        phase = self.seed * 0.37 + self.calls * 1.91
        values = np.sin(np.arange(int(np.prod(shape)), dtype=np.float64) * 0.7 + phase) * np.sqrt(2)
        return (values.reshape(shape) * scale).astype(np.float32)


def mapping_variables(n: Numbers, kw: dict, extra_inputs: int = 0) -> dict:
    """G_mapping's dense layers (StyleGAN and StyleGAN2 alike); `extra_inputs`: embedded label features."""
    mapping = {}
    for i in range(kw["mapping_layers"]):
        fin = kw["latent_size"] + extra_inputs if i == 0 else kw["mapping_fmaps"]
        fout = kw["dlatent_size"] if i == kw["mapping_layers"] - 1 else kw["mapping_fmaps"]
        mapping.update({f"Dense{i}/weight": n(fin, fout), f"Dense{i}/bias": n(fout, scale=0.1)})
    return mapping


def _nf(fmap_base: int, fmap_max: int):
    return lambda stage: int(min(fmap_base / 2.0**stage, fmap_max))


# ---------------------------------------------------------------- StyleGAN2 (config F: skip G, resnet D)

SG2_KWARGS = dict(num_channels=3, resolution=16, label_size=0, latent_size=16, dlatent_size=16, mapping_layers=2,
                  mapping_fmaps=16, fmap_base=64, fmap_max=16, truncation_psi=0.5)


def stylegan2_generator(n: Numbers, sentinel: Path, architecture: str = "skip", ada: bool = False, **overrides):
    """NVlabs/stylegan2's G (G_synthesis_stylegan2), or with `ada` stylegan2-ada's TF G (G_synthesis; labels
    through 'LabelEmbed', label_size in the overrides)."""
    kw = dict(SG2_KWARGS, architecture=architecture, **overrides)
    R, C, W, nf = kw["resolution"], kw["num_channels"], kw["dlatent_size"], _nf(kw["fmap_base"], kw["fmap_max"])
    log2 = int(np.log2(R))
    embed = {}
    if kw["label_size"]:  # stylegan2-ada's G_mapping: the embedding has latent_size features
        embed = {"LabelEmbed/weight": n(kw["label_size"], kw["latent_size"]),
                 "LabelEmbed/bias": n(kw["latent_size"], scale=0.1)}
    mapping = {**embed, **mapping_variables(n, kw, extra_inputs=kw["latent_size"] if embed else 0)}
    synthesis = {f"noise{i}": n(1, 1, 2 ** ((i + 5) // 2), 2 ** ((i + 5) // 2)) for i in range(log2 * 2 - 3)}

    def modulated(scope, fin, fout, kernel, noise=True):
        synthesis.update({f"{scope}/weight": n(kernel, kernel, fin, fout), f"{scope}/mod_weight": n(W, fin),
                          f"{scope}/mod_bias": n(fin, scale=0.1), f"{scope}/bias": n(fout, scale=0.1)})
        if noise:
            synthesis[f"{scope}/noise_strength"] = n(scale=0.3)

    synthesis["4x4/Const/const"] = n(1, nf(1), 4, 4)
    modulated("4x4/Conv", nf(1), nf(1), 3)
    if architecture == "skip":
        modulated("4x4/ToRGB", nf(1), C, 1, noise=False)
    for res in range(3, log2 + 1):
        r = f"{2**res}x{2**res}"
        modulated(f"{r}/Conv0_up", nf(res - 2), nf(res - 1), 3)
        modulated(f"{r}/Conv1", nf(res - 1), nf(res - 1), 3)
        if architecture == "resnet":
            synthesis[f"{r}/Skip/weight"] = n(1, 1, nf(res - 2), nf(res - 1))
        if architecture == "skip" or res == log2:
            modulated(f"{r}/ToRGB", nf(res - 1), C, 1, noise=False)
    components = {
        "mapping": network("G_mapping", "G_mapping", dict(kw, dlatent_broadcast=log2 * 2 - 2), mapping, sentinel),
        "synthesis": network("G_synthesis", "G_synthesis" if ada else "G_synthesis_stylegan2", kw, synthesis,
                             sentinel),
    }
    own = {"lod": n(scale=0), "dlatent_avg": n(W, scale=0.5)}
    return network("G", "G_main", kw, own, sentinel, components), kw


def d_block(n: Numbers, v: dict, res: int, fin: int, fout: int, down: str) -> None:
    """A discriminator level's two 3x3 convolutions (all three families name them alike)."""
    r = f"{res}x{res}"
    v.update({f"{r}/Conv0/weight": n(3, 3, fin, fin), f"{r}/Conv0/bias": n(fin, scale=0.1),
              f"{r}/{down}/weight": n(3, 3, fin, fout), f"{r}/{down}/bias": n(fout, scale=0.1)})


def d_head(n: Numbers, v: dict, nf, output: str, outputs: int) -> None:
    """The 4x4 head after the minibatch stddev layer: conv, dense, output dense."""
    v.update({"4x4/Conv/weight": n(3, 3, nf(1) + 1, nf(1)), "4x4/Conv/bias": n(nf(1), scale=0.1),
              "4x4/Dense0/weight": n(nf(1) * 16, nf(0)), "4x4/Dense0/bias": n(nf(0), scale=0.1),
              f"{output}/weight": n(nf(0), outputs), f"{output}/bias": n(outputs, scale=0.1)})


def stylegan2_discriminator(n: Numbers, sentinel: Path, ada: bool = False, **overrides):
    """NVlabs/stylegan2's D_stylegan2, or with `ada` stylegan2-ada's TF D_main (labels: 'LabelEmbed' to
    nf(0) features, projected on 'Output')."""
    kw = {k: v for k, v in SG2_KWARGS.items() if k in ("num_channels", "resolution", "label_size", "fmap_base",
                                                      "fmap_max")}
    kw.update(overrides)
    R, C, nf = kw["resolution"], kw["num_channels"], _nf(kw["fmap_base"], kw["fmap_max"])
    log2 = int(np.log2(R))
    v = {f"{R}x{R}/FromRGB/weight": n(1, 1, C, nf(log2 - 1)), f"{R}x{R}/FromRGB/bias": n(nf(log2 - 1), scale=0.1)}
    for res in range(log2, 2, -1):
        d_block(n, v, 2**res, nf(res - 1), nf(res - 2), "Conv1_down")
        v[f"{2**res}x{2**res}/Skip/weight"] = n(1, 1, nf(res - 1), nf(res - 2))
    labels = kw["label_size"]
    d_head(n, v, nf, "Output", nf(0) if labels else 1)
    if labels:
        v.update({"LabelEmbed/weight": n(labels, nf(0)), "LabelEmbed/bias": n(nf(0), scale=0.1)})
    return network("D", "D_main" if ada else "D_stylegan2", kw, v, sentinel), kw


# ---------------------------------------------------------------- StyleGAN v1 (G_style, D_basic)

SG1_KWARGS = dict(num_channels=3, resolution=16, label_size=0, latent_size=16, dlatent_size=16, mapping_layers=2,
                  mapping_fmaps=16, fmap_base=64, fmap_max=16)


def epilogue(n: Numbers, v: dict, scope: str, channels: int, W: int) -> None:
    """Variables of networks_stylegan.py's layer_epilogue: noise weight, bias, style modulation."""
    v.update({f"{scope}/Noise/weight": n(channels, scale=0.3), f"{scope}/bias": n(channels, scale=0.1),
              f"{scope}/StyleMod/weight": n(W, 2 * channels), f"{scope}/StyleMod/bias": n(2 * channels, scale=0.1)})


def stylegan1_generator(n: Numbers, sentinel: Path, **overrides):
    kw = dict(SG1_KWARGS, **overrides)
    R, C, W, nf = kw["resolution"], kw["num_channels"], kw["dlatent_size"], _nf(kw["fmap_base"], kw["fmap_max"])
    log2 = int(np.log2(R))
    mapping = mapping_variables(n, kw)
    synthesis = {"lod": n(scale=0)}
    synthesis.update({f"noise{i}": n(1, 1, 2 ** (i // 2 + 2), 2 ** (i // 2 + 2)) for i in range(log2 * 2 - 2)})
    synthesis["4x4/Const/const"] = n(1, nf(1), 4, 4)
    epilogue(n, synthesis, "4x4/Const", nf(1), W)
    synthesis["4x4/Conv/weight"] = n(3, 3, nf(1), nf(1))
    epilogue(n, synthesis, "4x4/Conv", nf(1), W)
    for res in range(3, log2 + 1):
        r = f"{2**res}x{2**res}"
        synthesis[f"{r}/Conv0_up/weight"] = n(3, 3, nf(res - 2), nf(res - 1))
        epilogue(n, synthesis, f"{r}/Conv0_up", nf(res - 1), W)
        synthesis[f"{r}/Conv1/weight"] = n(3, 3, nf(res - 1), nf(res - 1))
        epilogue(n, synthesis, f"{r}/Conv1", nf(res - 1), W)
    for res in range(2, log2 + 1):
        synthesis[f"ToRGB_lod{log2 - res}/weight"] = n(1, 1, nf(res - 1), C)
        synthesis[f"ToRGB_lod{log2 - res}/bias"] = n(C, scale=0.1)
    components = {
        "synthesis": network("G_synthesis", "G_synthesis", kw, synthesis, sentinel, version=3),
        "mapping": network("G_mapping", "G_mapping", dict(kw, dlatent_broadcast=log2 * 2 - 2), mapping, sentinel,
                           version=3),
    }
    own = {"lod": n(scale=0), "dlatent_avg": n(W, scale=0.5)}
    return network("G", "G_style", kw, own, sentinel, components, version=3), kw


def progressive_discriminator(n: Numbers, kw: dict, down: str, outputs: int) -> dict:
    """Variables of D_basic (StyleGAN v1) and D_paper (ProGAN), which share their layers and names."""
    R, C, nf = kw["resolution"], kw["num_channels"], _nf(kw["fmap_base"], kw["fmap_max"])
    log2 = int(np.log2(R))
    v = {"lod": n(scale=0)}
    for res in range(2, log2 + 1):
        v[f"FromRGB_lod{log2 - res}/weight"] = n(1, 1, C, nf(res - 1))
        v[f"FromRGB_lod{log2 - res}/bias"] = n(nf(res - 1), scale=0.1)
    for res in range(log2, 2, -1):
        d_block(n, v, 2**res, nf(res - 1), nf(res - 2), down)
    d_head(n, v, nf, "4x4/Dense1", outputs)
    return v


def stylegan1_discriminator(n: Numbers, sentinel: Path, **overrides):
    kw = dict({k: SG1_KWARGS[k] for k in ("num_channels", "resolution", "label_size", "fmap_base", "fmap_max")},
              **overrides)
    v = progressive_discriminator(n, kw, "Conv1_down", max(kw["label_size"], 1))
    return network("D", "D_basic", kw, v, sentinel, version=3), kw


# ---------------------------------------------------------------- ProGAN (G_paper, D_paper)

PROGAN_KWARGS = dict(num_channels=3, resolution=16, label_size=0, latent_size=16, fmap_base=32, fmap_max=16)


def progan_generator(n: Numbers, sentinel: Path, **overrides):
    kw = dict(PROGAN_KWARGS, **overrides)
    R, C, nf = kw["resolution"], kw["num_channels"], _nf(kw["fmap_base"], kw["fmap_max"])
    fused = kw.get("fused_scale", True)
    log2 = int(np.log2(R))
    v = {"lod": n(scale=0), "4x4/Dense/weight": n(kw["latent_size"] + kw["label_size"], nf(1) * 16),
         "4x4/Dense/bias": n(nf(1), scale=0.1), "4x4/Conv/weight": n(3, 3, nf(1), nf(1)),
         "4x4/Conv/bias": n(nf(1), scale=0.1)}
    for res in range(3, log2 + 1):
        r = f"{2**res}x{2**res}"
        if fused:  # upscale2d_conv2d's variable is [k, k, out, in]
            v[f"{r}/Conv0_up/weight"] = n(3, 3, nf(res - 1), nf(res - 2))
            v[f"{r}/Conv0_up/bias"] = n(nf(res - 1), scale=0.1)
        else:
            v[f"{r}/Conv0/weight"] = n(3, 3, nf(res - 2), nf(res - 1))
            v[f"{r}/Conv0/bias"] = n(nf(res - 1), scale=0.1)
        v.update({f"{r}/Conv1/weight": n(3, 3, nf(res - 1), nf(res - 1)), f"{r}/Conv1/bias": n(nf(res - 1), scale=0.1)})
    for res in range(2, log2 + 1):
        v[f"ToRGB_lod{log2 - res}/weight"] = n(1, 1, nf(res - 1), C)
        v[f"ToRGB_lod{log2 - res}/bias"] = n(C, scale=0.1)
    return network("G", "G_paper", kw, v, sentinel, version=2), kw


def progan_discriminator(n: Numbers, sentinel: Path, **overrides):
    kw = dict({k: PROGAN_KWARGS[k] for k in ("num_channels", "resolution", "label_size", "fmap_base", "fmap_max")},
              **overrides)
    down = "Conv1_down" if kw.get("fused_scale", True) else "Conv1"
    v = progressive_discriminator(n, kw, down, 1 + kw["label_size"])
    return network("D", "D_paper", kw, v, sentinel, version=2), kw


FAMILIES = {
    "stylegan2": ("dnnlib.tflib.network", stylegan2_generator, stylegan2_discriminator),
    "stylegan2-ada": ("dnnlib.tflib.network", functools.partial(stylegan2_generator, ada=True, label_size=4),
                      functools.partial(stylegan2_discriminator, ada=True, label_size=4)),
    "stylegan1": ("dnnlib.tflib.network", stylegan1_generator, stylegan1_discriminator),
    "progan": ("tfutil", progan_generator, progan_discriminator),
}


def tf_pickle(path: Path, family: str, sentinel: Path, seed: int = 0, protocol: int = 3, g_kwargs=None,
              d_kwargs=None):
    """A pickle (G, D, Gs) of `family`; G and Gs hold different numbers. Returns (path, {key: (net, kwargs)})."""
    _, make_g, make_d = FAMILIES[family]
    G = make_g(Numbers(seed), sentinel, **(g_kwargs or {}))
    D = make_d(Numbers(seed + 1), sentinel, **(d_kwargs or {}))
    Gs = make_g(Numbers(seed + 2), sentinel, **(g_kwargs or {}))
    write(path, (G[0], D[0], Gs[0]), protocol)
    return path, {"G": G, "D": D, "G_ema": Gs}


def labels(kw: dict, n: int) -> np.ndarray | None:
    """One-hot labels [n, label_size] for a conditional network's inputs, None for an unconditional one."""
    return np.eye(kw["label_size"], dtype=np.float32)[np.arange(n) % kw["label_size"]] if kw["label_size"] else None


def variables_of(net: Network, prefix: str = "") -> dict[str, np.ndarray]:
    """All variables by full name, components under '<key>/' (as the importer collects them)."""
    found = {prefix + k: np.asarray(v) for k, v in net.state["variables"]}
    for key, comp in net.state.get("components", {}).items():
        found.update(variables_of(comp, f"{prefix}{key}/"))
    return found
