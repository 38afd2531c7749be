"""Looping latent interpolation videos, and MP4 writing shared by the tools.

Each grid cell walks through its share of the seeds (cell i gets seeds[i*k:(i+1)*k]) and wraps around,
so the video loops: the frame after the last one is the first. Slerp between z keyframes (Z is a
Gaussian, whose mass lies near a sphere), lerp between w keyframes.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

import numpy as np
import torch
from tqdm import tqdm

from styleforge.errors import UserError
from styleforge.images import make_grid, to_uint8
from styleforge.inference.generate import synthesize
from styleforge.inference.interpolation import SPACES, latent_at
from styleforge.inference.seeds import class_labels, network_device, seeds_to_z


@torch.no_grad()
def keyframes(G: torch.nn.Module, seeds: list[int], cells: int, space: str, psi: float, c: torch.Tensor,
              device: torch.device, truncation_cutoff: int | None = None) -> torch.Tensor:
    """Keyframe latents [cells, k, z_dim] (space z) or [cells, k, num_ws, w_dim] (space w), k = len(seeds)/cells."""
    if space not in SPACES:
        raise UserError(f"--space '{space}': choose one of {SPACES}")
    if not seeds or len(seeds) % cells:
        raise UserError(f"--seeds: {len(seeds)} seeds do not split evenly over {cells} grid cells")
    z = seeds_to_z(seeds, G.z_dim, device)  # [S, z_dim]
    if space == "z":
        return z.reshape(cells, -1, G.z_dim)
    ws = G.mapping(z, c[:1].expand(len(seeds), -1), truncation_psi=psi, truncation_cutoff=truncation_cutoff)
    return ws.reshape(cells, -1, *ws.shape[1:])


@torch.no_grad()
def interpolation_frames(
    G: torch.nn.Module,
    seeds: list[int],
    grid: tuple[int, int] = (1, 1),
    num_frames: int = 240,
    space: str = "z",
    psi: float = 1.0,
    truncation_cutoff: int | None = None,
    class_idx: int | None = None,
    noise_mode: str = "const",
    device: torch.device | str | None = None,
    progress: bool = True,
) -> Iterator[np.ndarray]:
    """Yields `num_frames` uint8 frames [rows*H, cols*W, C] of a looping walk; grid = (cols, rows)."""
    device = torch.device(device) if device is not None else network_device(G)
    G = G.to(device)
    cells = grid[0] * grid[1]
    c = class_labels(G, class_idx, cells, device)  # [cells, c_dim]
    keys = keyframes(G, seeds, cells, space, psi, c, device, truncation_cutoff)
    for frame in tqdm(range(num_frames), desc="video", unit="frame", disable=not progress):
        latents = latent_at(keys, frame / num_frames, space)
        ws = (G.mapping(latents, c, truncation_psi=psi, truncation_cutoff=truncation_cutoff) if space == "z"
              else latents)  # [cells, num_ws, w_dim]
        yield make_grid(to_uint8(synthesize(G, ws, noise_mode)), cols=grid[0])


def require_video_extra():
    try:
        import imageio.v2 as imageio
        import imageio_ffmpeg  # noqa: F401  (the MP4 backend; imported to fail early with a clear message)
    except ImportError as e:
        raise UserError(f"writing MP4 needs the `video` extra: pip install 'styleforge[video]' ({e})") from e
    return imageio


def video_available() -> bool:
    try:
        require_video_extra()
    except UserError:
        return False
    return True


def write_video(frames: Iterable[np.ndarray], path: str | os.PathLike, fps: float = 30) -> int:
    """Writes uint8 frames [H, W, C] as an H.264 MP4; returns the number of frames written."""
    imageio = require_video_extra()
    count = 0
    # macro_block_size=1 keeps the exact frame size (H.264 only needs even sides, which GAN images have).
    with imageio.get_writer(os.fspath(path), mode="I", fps=fps, codec="libx264", bitrate="16M",
                            macro_block_size=1) as writer:
        for frame in frames:
            writer.append_data(frame[:, :, 0] if frame.shape[2] == 1 else frame)
            count += 1
    return count
