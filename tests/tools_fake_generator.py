"""A tiny generator with the network contract, for the tools' tests until the StyleGAN2 networks land."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from styleforge.networks.persistence import persistent
from styleforge.registry import GENERATORS


class FakeMapping(torch.nn.Module):
    def __init__(self, z_dim: int, c_dim: int, w_dim: int, num_ws: int):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, c_dim, w_dim, num_ws
        self.fc0 = torch.nn.Linear(z_dim + c_dim, w_dim)
        self.fc1 = torch.nn.Linear(w_dim, w_dim)
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z, c, truncation_psi=1, truncation_cutoff=None, update_emas=False):
        x = z * (z.square().mean(1, keepdim=True) + 1e-8).rsqrt()
        if self.c_dim:
            x = torch.cat([x, c], dim=1)
        w = self.fc1(F.leaky_relu(self.fc0(x), 0.2))
        ws = w.unsqueeze(1).repeat(1, self.num_ws, 1)  # [N, num_ws, w_dim]
        if truncation_psi != 1:
            cutoff = self.num_ws if truncation_cutoff is None else truncation_cutoff
            ws[:, :cutoff] = self.w_avg.lerp(ws[:, :cutoff], truncation_psi)
        return ws


class FakeSynthesis(torch.nn.Module):
    """Two modulated layers per resolution from 4x4 up, each with its own ws entry and a const noise map."""

    def __init__(self, w_dim: int, img_resolution: int, img_channels: int, channels: int = 8):
        super().__init__()
        self.resolutions = [2**i for i in range(2, img_resolution.bit_length())]
        self.num_ws = 2 * len(self.resolutions)
        self.const = torch.nn.Parameter(torch.randn(channels, 4, 4))
        self.affines = torch.nn.ModuleList(torch.nn.Linear(w_dim, channels) for _ in range(self.num_ws))
        self.convs = torch.nn.ModuleList(torch.nn.Conv2d(channels, channels, 3, padding=1) for _ in range(self.num_ws))
        for i in range(self.num_ws):
            res = self.resolutions[i // 2]
            self.register_buffer(f"layer{i}_noise_const", torch.randn(res, res))
        self.noise_strength = torch.nn.Parameter(torch.zeros([self.num_ws]))
        self.to_rgb = torch.nn.Conv2d(channels, img_channels, 1)

    def forward(self, ws, noise_mode="random", update_emas=False):
        x = self.const.unsqueeze(0).repeat(ws.shape[0], 1, 1, 1)
        for i in range(self.num_ws):
            if i and i % 2 == 0:
                x = F.interpolate(x, scale_factor=2, mode="nearest")
            x = self.convs[i](x * self.affines[i](ws[:, i])[:, :, None, None])
            x = x * (x.square().mean((1, 2, 3), keepdim=True) + 1e-8).rsqrt()  # keep activations at unit scale
            if noise_mode == "random":
                x = x + torch.randn_like(x[:, :1]) * self.noise_strength[i]
            elif noise_mode == "const":
                x = x + getattr(self, f"layer{i}_noise_const") * self.noise_strength[i]
            x = F.leaky_relu(x, 0.2)
        return torch.tanh(self.to_rgb(x))


@GENERATORS.register("_test_tools_fake")
@persistent("_test_tools_fake")
class FakeGenerator(torch.nn.Module):
    def __init__(self, z_dim: int = 16, c_dim: int = 0, w_dim: int = 16, img_resolution: int = 16,
                 img_channels: int = 3):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.synthesis = FakeSynthesis(w_dim, img_resolution, img_channels)
        self.num_ws = self.synthesis.num_ws
        self.mapping = FakeMapping(z_dim, c_dim, w_dim, self.num_ws)
        with torch.no_grad():
            self.mapping.w_avg.copy_(self.mapping(torch.randn(256, z_dim), torch.zeros(256, c_dim)).mean((0, 1)))

    def forward(self, z, c, truncation_psi=1, truncation_cutoff=None, noise_mode="random", update_emas=False):
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, noise_mode=noise_mode)
