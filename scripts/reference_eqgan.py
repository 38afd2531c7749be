"""Recipe for tests/official/data/eqgan_sa_official.safetensors: EqGAN-SA's official generator on fixed numbers.

Runs genforce/eqgan-sa's own training/networks.py (CPU is enough) on a tiny generator whose parameters come
from tests/official_numbers.py, for fixed latents and heatmaps, and records the inputs, the images and the
official parameter names and shapes. tests/official/test_official_eqgan.py builds an official-format pickle from the
same numbers, imports it, and compares.

    python scripts/reference_eqgan.py --official PATH/TO/eqgan-sa \
        --out tests/official/data/eqgan_sa_official.safetensors
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import types
from pathlib import Path

import torch
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from official_numbers import fill_official, official_value  # noqa: E402

KWARGS = dict(z_dim=8, c_dim=0, w_dim=8, img_resolution=32, img_channels=3, use_sel=True,
              mapping_kwargs=dict(num_layers=2), synthesis_kwargs=dict(channel_base=128, channel_max=8))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official", required=True, type=Path, help="a checkout of genforce/eqgan-sa")
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args()
    sys.modules.setdefault("requests", types.ModuleType("requests"))  # dnnlib.util imports it for downloads only
    sys.path.insert(0, str(args.official))
    from training import networks  # the official code

    G = networks.Generator(**KWARGS).eval().requires_grad_(False)
    G.load_state_dict(fill_official(G.state_dict()))
    torch.manual_seed(0)
    heatmap = networks.generate_heatmap_multi(2, KWARGS["img_resolution"])  # {'b8', 'b16', 'b32'}: 1, 2, 4 maps
    z = official_value("z", (2, KWARGS["z_dim"]))
    images = G(z, None, heatmap=heatmap, noise_mode="const")
    commit = subprocess.run(["git", "-C", str(args.official), "rev-parse", "HEAD"], capture_output=True, text=True)
    metadata = {"recipe": "scripts/reference_eqgan.py", "official_commit": commit.stdout.strip(),
                "kwargs": json.dumps(KWARGS),
                "parameters": json.dumps({k: list(v.shape) for k, v in G.state_dict().items()})}
    tensors = {"z": z, "images": images, **{f"heatmap.{k}": v.contiguous() for k, v in heatmap.items()}}
    save_file(tensors, str(args.out), metadata=metadata)
    print(f"wrote {args.out}: images mean |x| {images.abs().mean():.3f}")


if __name__ == "__main__":
    main()
