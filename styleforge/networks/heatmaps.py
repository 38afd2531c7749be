"""EqGAN-SA's random multi-level heatmaps (Wang et al. 2022, genforce/eqgan-sa `generate_heatmap_multi`).

Three levels of gaussian blobs on the image plane tell G where to put things: level 1 one blob for the
object, level 2 two blobs for its parts, level 3 four blobs for finer parts, the finer centres scattered
around the level-1 centre. Each level is a tensor [N, k, R, R] (k = 1, 2, 4), one channel per centre:
    H[n, j](p) = exp(-|p - centre[n, j]|^2 / sigma[n, j]) + 0.01,   p on the grid 2i/(R-1) - 1, (y, x),
so values lie in [0.01, 1.01]. A `HeatmapSpec` holds the centres and widths, so a user can move an
object (level 1) or its parts (levels 2, 3) and render again.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

NUM_CENTRES = (1, 2, 4)  # per level
FLOOR = 0.01  # added to every heatmap value


@dataclass(frozen=True)
class HeatmapSpec:
    """Blob centres (y, x in [-1, 1]) and widths of the three levels, for a batch of N images."""

    centres: tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # [N, k, 2] per level
    sigmas: tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # [N, k] per level

    @property
    def batch_size(self) -> int:
        return self.centres[0].shape[0]

    def render(self, resolution: int) -> list[torch.Tensor]:
        """The three levels' heatmaps, [N, k, R, R] each, values in [0.01, 1.01]."""
        return [render_gaussians(c, s, resolution) for c, s in zip(self.centres, self.sigmas)]

    def moved(self, offset: torch.Tensor | tuple[float, float], levels: tuple[int, ...] = (1, 2, 3)) -> HeatmapSpec:
        """The spec with the centres of `levels` shifted by `offset` ((dy, dx), or [N, 2] / [N, k, 2] tensors).

        Moving all levels moves the object with its parts; moving level 2 or 3 alone moves the parts."""
        centres = list(self.centres)
        for level in levels:
            c = centres[level - 1]
            delta = torch.as_tensor(offset, dtype=c.dtype, device=c.device)
            centres[level - 1] = c + (delta.unsqueeze(-2) if delta.ndim in (1, 2) else delta)
        return replace(self, centres=tuple(centres))


def render_gaussians(centres: torch.Tensor, sigmas: torch.Tensor, resolution: int) -> torch.Tensor:
    """centres [N, k, 2] (y, x), sigmas [N, k] -> exp(-|p - c|^2 / sigma) + 0.01, [N, k, R, R]."""
    coords = torch.arange(resolution, device=centres.device, dtype=centres.dtype) * (2 / (resolution - 1)) - 1
    dy = (coords.reshape(1, 1, -1) - centres[..., 0:1]).square()  # [N, k, R] along y
    dx = (coords.reshape(1, 1, -1) - centres[..., 1:2]).square()  # [N, k, R] along x
    dist = dy.unsqueeze(-1) + dx.unsqueeze(-2)  # [N, k, R, R]
    return torch.exp(-dist / sigmas[..., None, None]) + FLOOR


def sample_heatmap_spec(
    batch_size: int, device: torch.device | str | None = None, centre: torch.Tensor | None = None
) -> HeatmapSpec:
    """Random centres and widths as EqGAN-SA draws them (from torch's generator).

    Level 1: centre ~ N(0, 0.33^2) per axis clamped to [-0.75, 0.75] (or the given `centre` [N, 2]),
    sigma = 0.5 * (1 + U), one value for the whole batch. Level 2: centre + (U - 0.5) * 0.8, sigma =
    (U + 0.1) / 1.4 per sample and centre. Level 3: centre + (U - 0.5) * 1.6, sigma = (U + 0.1) / 2.
    """
    if centre is None:
        centre = (torch.randn([batch_size, 2], device=device) * 0.33).clamp(-0.75, 0.75)
    centre = centre.to(device=device, dtype=torch.float32).reshape(batch_size, 1, 2)
    sigma1 = (torch.rand([], device=device) + 1) * 0.5
    centres, sigmas = [centre], [sigma1.expand(batch_size, 1)]
    for k, spread, shrink in ((2, 0.8, 1.4), (4, 1.6, 2.0)):
        centres.append(centre + (torch.rand([batch_size, k, 2], device=device) - 0.5) * spread)
        sigmas.append((torch.rand([batch_size, k], device=device) + 0.1) / shrink)
    return HeatmapSpec(tuple(centres), tuple(sigmas))


def random_heatmaps(batch_size: int, resolution: int, device: torch.device | str | None = None) -> list[torch.Tensor]:
    """Three levels of random heatmaps, [N, 1|2|4, R, R]."""
    return sample_heatmap_spec(batch_size, device).render(resolution)
