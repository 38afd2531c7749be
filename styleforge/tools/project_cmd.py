"""Project a real image into the latent space (W or W+) of a trained generator.

As the official projector.py: writes target.png, proj.png, projected_w.npz (key 'w': [1, num_ws, w_dim],
renders with `G.synthesis(w, noise_mode='const')`) and, with the `video` extra, proj.mp4 showing the
target beside the optimization's progress.

Example:
  styleforge project --network ffhq.safetensors --target me.png --steps 1000 --outdir proj
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from styleforge.errors import UserError
from styleforge.images import save_image
from styleforge.tools.generate_cmd import add_network_arguments, load_generator
from styleforge.tools.projector import (
    DISTANCES,
    ProjectionSettings,
    load_target,
    progress_frames,
    project,
    render_ws,
)
from styleforge.tools.video import video_available, write_video

VIDEO_FPS = 10


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_network_arguments(parser)
    parser.add_argument("--target", required=True, metavar="IMAGE", help="image to project (cropped to a square)")
    parser.add_argument("--steps", type=int, default=1000, help="optimization steps (default 1000)")
    parser.add_argument("--w-plus", action="store_true", help="optimize one w per layer (W+) instead of one w")
    parser.add_argument("--seed", type=int, default=303, help="random seed (default 303)")
    parser.add_argument("--class", dest="class_idx", type=int, default=None, help="class (conditional networks)")
    parser.add_argument("--distance", choices=DISTANCES, default="auto",
                        help="auto: LPIPS when its weights are found, else multi-scale MSE")
    parser.add_argument("--no-video", action="store_true", help="skip proj.mp4")
    parser.add_argument("--outdir", required=True, help="where the results go")


def run(args: argparse.Namespace) -> int:
    if args.steps < 1:
        raise UserError(f"--steps {args.steps}: must be at least 1")
    G = load_generator(args)
    target = load_target(args.target, G)
    projection = project(G, target, w_plus=args.w_plus, settings=ProjectionSettings(num_steps=args.steps),
                         distance=args.distance, class_idx=args.class_idx, seed=args.seed)
    outdir = Path(args.outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    save_image(target, outdir / "target.png")
    save_image(render_ws(G, projection.ws)[0], outdir / "proj.png")
    np.savez(outdir / "projected_w.npz", w=projection.ws.cpu().numpy())
    print(f"final distance {projection.distances[-1]:.4f}; wrote target.png, proj.png, projected_w.npz to {outdir}")
    if args.no_video:
        return 0
    if not video_available():
        print("proj.mp4 skipped: writing MP4 needs the `video` extra (pip install 'styleforge[video]')")
        return 0
    write_video(progress_frames(G, target, projection), outdir / "proj.mp4", fps=VIDEO_FPS)
    print(f"wrote {outdir / 'proj.mp4'}")
    return 0
