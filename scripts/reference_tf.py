"""Recipe for tests/official/data/tf_official.npz: the official TensorFlow networks on the numbers of
tests/tf_pickles.py.

Builds the official build functions' graphs (NVlabs/stylegan2 training/networks_stylegan2.py,
NVlabs/stylegan2-ada training/networks.py, NVlabs/stylegan training/networks_stylegan.py,
progressive_growing_of_gans networks.py) with TensorFlow's v1 API, loads each
variable from the test pickles' numbers (failing if the official code creates a variable the tests do not
have, or the tests have one it does not create), and records the outputs for fixed inputs.
tests/official/test_official_tf.py compares imported networks with them. Needs tensorflow (any 2.x, CPU) and numpy; the
official code's CUDA ops run as their reference implementations, dnnlib's helpers are stood in for.

    python scripts/reference_tf.py --stylegan2 DIR --stylegan2-ada DIR --stylegan DIR --progan DIR \
        --out tests/official/data/tf_official.npz
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import types
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import tf_pickles as P  # noqa: E402

N_IMAGES, N_SCORES = 3, 8
Z = P.Numbers(7)(N_IMAGES, 16)
IMAGES = P.Numbers(8)(N_SCORES, 3, 16, 16)


def load_module(name: str, path: Path) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def official_modules(args: argparse.Namespace, tf) -> tuple:
    """The official network files, importable without dnnlib's TF runtime (stand-ins for its helpers); each
    repository's networks with its own ops."""
    def stub(name: str, **attrs) -> types.ModuleType:
        module = types.ModuleType(name)
        module.__path__ = []
        module.__dict__.update(attrs)
        sys.modules[name] = module
        return module

    class EasyDict(dict):
        __getattr__ = dict.__getitem__

    dnnlib = stub("dnnlib", EasyDict=EasyDict, util=stub("dnnlib.util", EasyDict=EasyDict))
    dnnlib.tflib = stub("dnnlib.tflib", lerp=lambda a, b, t: a + (b - a) * t,
                        lerp_clip=lambda a, b, t: a + (b - a) * tf.clip_by_value(t, 0.0, 1.0),
                        is_tf_expression=lambda x: isinstance(x, (tf.Tensor, tf.Variable, tf.Operation)),
                        custom_ops=stub("dnnlib.tflib.custom_ops"), ops=stub("dnnlib.tflib.ops"))
    def with_ops(repo: Path, name: str, path: Path) -> types.ModuleType:
        ops = repo / "dnnlib" / "tflib" / "ops"
        upfirdn = load_module("dnnlib.tflib.ops.upfirdn_2d", ops / "upfirdn_2d.py")
        upfirdn._upfirdn_2d_cuda = upfirdn._upfirdn_2d_ref
        bias_act = load_module("dnnlib.tflib.ops.fused_bias_act", ops / "fused_bias_act.py")
        bias_act._fused_bias_act_cuda = bias_act._fused_bias_act_ref
        return load_module(name, repo / path)

    return (with_ops(args.stylegan2, "networks_stylegan2", Path("training/networks_stylegan2.py")),
            with_ops(args.stylegan2_ada, "networks_stylegan2_ada", Path("training/networks.py")),
            load_module("networks_stylegan", args.stylegan / "training" / "networks_stylegan.py"),
            load_module("progan_networks", args.progan / "networks.py"))


def run(tf, build, variables: dict, scopes: dict) -> np.ndarray:
    """Builds the graph, loads every official variable from `variables` (scope -> prefix), runs it."""
    with tf.Graph().as_default(), tf.Session() as sess:
        out = build()
        used = set()
        for var in tf.global_variables():
            scope, local = var.name.split(":")[0].split("/", 1)
            name = scopes[scope] + local
            var.load(np.asarray(variables[name], np.float32).reshape(var.shape), sess)  # KeyError: a missing one
            used.add(name)
        extra = sorted(set(variables) - used - {"lod", "dlatent_avg"})  # G_main / G_style's own, not built here
        if extra:
            raise RuntimeError(f"variables the official code does not create: {extra}")
        return sess.run(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("stylegan2", "stylegan2-ada", "stylegan", "progan"):
        parser.add_argument(f"--{name}", required=True, type=Path, help=f"a checkout of NVlabs' {name} (TF) code")
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args()
    import tensorflow.compat.v1 as tf

    tf.disable_v2_behavior()
    sys.modules["tensorflow"] = tf  # the official code is TF 1 code
    sg2, ada, sg1, pg = official_modules(args, tf)
    never = Path("never-written")
    z, no_labels = lambda: tf.constant(Z), lambda n: tf.zeros([n, 0])  # made inside each graph
    g_scopes = {"G_mapping": "mapping/", "G_synthesis": "synthesis/"}
    common = dict(num_channels=3, resolution=16)
    results = {"z": Z, "images": IMAGES}

    for architecture in ("skip", "resnet"):
        g, kw = P.stylegan2_generator(P.Numbers(2), never, architecture=architecture)
        def stylegan2_g(architecture=architecture):
            with tf.variable_scope("G_mapping"):
                w = sg2.G_mapping(z(), no_labels(N_IMAGES), latent_size=16, dlatent_size=16, dlatent_broadcast=6,
                                  mapping_layers=2, mapping_fmaps=16)
            with tf.variable_scope("G_synthesis"):
                return sg2.G_synthesis_stylegan2(w, dlatent_size=16, fmap_base=64, fmap_max=16,
                                                 randomize_noise=False, architecture=architecture, **common)
        results[f"stylegan2_G_{architecture}"] = run(tf, stylegan2_g, P.variables_of(g), g_scopes)
    labels = P.labels({"label_size": 4}, N_IMAGES)
    g, kw = P.FAMILIES["stylegan2-ada"][1](P.Numbers(2), never)
    def ada_g():
        with tf.variable_scope("G_mapping"):
            w = ada.G_mapping(z(), tf.constant(labels), latent_size=16, label_size=4, dlatent_size=16,
                              dlatent_broadcast=6, mapping_layers=2, mapping_fmaps=16)
        with tf.variable_scope("G_synthesis"):
            return ada.G_synthesis(w, dlatent_size=16, fmap_base=64, fmap_max=16, randomize_noise=False, **common)
    results["stylegan2_ada_G"] = run(tf, ada_g, P.variables_of(g), g_scopes)
    d, kw = P.FAMILIES["stylegan2-ada"][2](P.Numbers(1), never)
    def ada_d():
        with tf.variable_scope("D"):
            return ada.D_main(tf.constant(IMAGES), tf.constant(P.labels(kw, N_SCORES)), label_size=4, fmap_base=64,
                              fmap_max=16, **common)
    results["stylegan2_ada_D"] = run(tf, ada_d, P.variables_of(d), {"D": ""})
    results["labels"] = labels

    d, kw = P.stylegan2_discriminator(P.Numbers(1), never)
    def stylegan2_d():
        with tf.variable_scope("D"):
            return sg2.D_stylegan2(tf.constant(IMAGES), no_labels(N_SCORES), fmap_base=64, fmap_max=16, **common)
    results["stylegan2_D"] = run(tf, stylegan2_d, P.variables_of(d), {"D": ""})

    for fused in ("auto", True, False):
        g, kw = P.stylegan1_generator(P.Numbers(2), never, **({} if fused == "auto" else {"fused_scale": fused}))
        def stylegan1_g(fused=fused):
            with tf.variable_scope("G_mapping"):
                w = sg1.G_mapping(z(), no_labels(N_IMAGES), latent_size=16, dlatent_size=16, dlatent_broadcast=6,
                                  mapping_layers=2, mapping_fmaps=16)
            with tf.variable_scope("G_synthesis"):  # use_noise=1: TF 2 takes no bool for a dimension
                return sg1.G_synthesis(w, dlatent_size=16, fmap_base=64, fmap_max=16, randomize_noise=False,
                                       fused_scale=fused, structure="linear", use_noise=1, **common)
        results[f"stylegan1_G_{fused}"] = run(tf, stylegan1_g, P.variables_of(g), g_scopes)
    for fused in ("auto", True):
        d, kw = P.stylegan1_discriminator(P.Numbers(1), never, **({} if fused == "auto" else {"fused_scale": fused}))
        def stylegan1_d(fused=fused):
            with tf.variable_scope("D"):
                return sg1.D_basic(tf.constant(IMAGES), no_labels(N_SCORES), fmap_base=64, fmap_max=16,
                                   fused_scale=fused, structure="linear", **common)
        results[f"stylegan1_D_{fused}"] = run(tf, stylegan1_d, P.variables_of(d), {"D": ""})

    for fused in (True, False):
        g, kw = P.progan_generator(P.Numbers(2), never, fused_scale=fused)
        def progan_g(fused=fused):
            with tf.variable_scope("G"):
                return pg.G_paper(z(), no_labels(N_IMAGES), fmap_base=32, fmap_max=16, latent_size=16,
                                  fused_scale=fused, structure="linear", **common)
        results[f"progan_G_{fused}"] = run(tf, progan_g, P.variables_of(g), {"G": ""})
        d, kw = P.progan_discriminator(P.Numbers(1), never, fused_scale=fused)
        def progan_d(fused=fused):
            with tf.variable_scope("D"):
                return pg.D_paper(tf.constant(IMAGES), fmap_base=32, fmap_max=16, fused_scale=fused,
                                  structure="linear", **common)[0]
        results[f"progan_D_{fused}"] = run(tf, progan_d, P.variables_of(d), {"D": ""})

    np.savez_compressed(args.out, **{k: np.asarray(v, np.float32) for k, v in results.items()})
    print(f"wrote {args.out}: " + ", ".join(f"{k} {list(v.shape)}" for k, v in results.items()))


if __name__ == "__main__":
    main()
