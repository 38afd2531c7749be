"""The mapping network z (+ label c) -> w, with the tracked mean w_avg used for truncation."""

from __future__ import annotations

import torch
from torch import nn

from styleforge.ops.layers import FullyConnectedLayer


def normalize_2nd_moment(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


class MappingNetwork(nn.Module):
    """z: [N, z_dim], c: [N, c_dim] -> ws: [N, num_ws, w_dim] (or [N, w_dim] when num_ws is None).

    Layers are `fc0 .. fc{num_layers-1}` (and `embed` for labels), as in the official code.
    """

    def __init__(
        self,
        z_dim: int,
        c_dim: int,
        w_dim: int,
        num_ws: int | None,
        num_layers: int = 8,
        embed_features: int | None = None,
        layer_features: int | None = None,
        activation: str = "lrelu",
        lr_multiplier: float = 0.01,
        w_avg_beta: float | None = 0.995,
    ):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, c_dim, w_dim, num_ws
        self.num_layers, self.w_avg_beta = num_layers, w_avg_beta

        embed_features = 0 if c_dim == 0 else (w_dim if embed_features is None else embed_features)
        layer_features = w_dim if layer_features is None else layer_features
        features = [z_dim + embed_features] + [layer_features] * (num_layers - 1) + [w_dim]
        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed_features)
        for idx in range(num_layers):
            layer = FullyConnectedLayer(features[idx], features[idx + 1], activation=activation,
                                        lr_multiplier=lr_multiplier)
            setattr(self, f"fc{idx}", layer)
        if num_ws is not None and w_avg_beta is not None:
            self.register_buffer("w_avg", torch.zeros([w_dim]))

    def layers(self) -> list[FullyConnectedLayer]:
        return [getattr(self, f"fc{idx}") for idx in range(self.num_layers)]

    def forward(
        self,
        z: torch.Tensor | None,
        c: torch.Tensor | None,
        truncation_psi: float = 1,
        truncation_cutoff: int | None = None,
        update_emas: bool = False,
    ) -> torch.Tensor:
        dtype = (self.fc0 if self.num_layers else self.embed).weight.dtype  # a D's label mapping may have no layers
        x = None
        if self.z_dim > 0:
            _check_shape(z, self.z_dim, "z")
            x = normalize_2nd_moment(z.to(dtype))
        if self.c_dim > 0:
            _check_shape(c, self.c_dim, "c")
            y = normalize_2nd_moment(self.embed(c.to(dtype)))
            x = torch.cat([x, y], dim=1) if x is not None else y
        for layer in self.layers():
            x = layer(x)  # [N, w_dim]

        if update_emas and self.training and self.w_avg_beta is not None:
            self.w_avg.copy_(x.detach().mean(dim=0).to(self.w_avg.dtype).lerp(self.w_avg, self.w_avg_beta))

        if self.num_ws is not None:
            x = x.unsqueeze(1).repeat([1, self.num_ws, 1])  # [N, num_ws, w_dim]
        if truncation_psi != 1:
            x = self.truncate(x, truncation_psi, truncation_cutoff)
        return x

    def truncate(self, ws: torch.Tensor, psi: float, cutoff: int | None = None) -> torch.Tensor:
        """w_avg + psi * (w - w_avg) on the first `cutoff` ws (all when None)."""
        if self.w_avg_beta is None:
            raise ValueError("truncation needs w_avg, which this mapping network does not track")
        w_avg = self.w_avg.to(ws.dtype)
        if self.num_ws is None or cutoff is None:
            return w_avg.lerp(ws, psi)
        ws = ws.clone()
        ws[:, :cutoff] = w_avg.lerp(ws[:, :cutoff], psi)
        return ws


def _check_shape(t: torch.Tensor | None, dim: int, name: str) -> None:
    if t is None or t.ndim != 2 or t.shape[1] != dim:
        shape = None if t is None else list(t.shape)
        raise ValueError(f"{name} must have shape [N, {dim}], got {shape}")
