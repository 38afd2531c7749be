"""Tiny networks for tests, built as training builds them: from a NetworkSpec through the class's
kwargs_from_spec, so any registered network comes out small and fast."""

from __future__ import annotations

import dataclasses

import torch

import styleforge.networks  # noqa: F401  (registers the networks)
from styleforge.networks.spec import NetworkSpec, build_network
from styleforge.registry import DISCRIMINATORS, GENERATORS

TINY_SPEC = NetworkSpec(img_resolution=16, img_channels=3, c_dim=0, z_dim=8, w_dim=8, mapping_layers=1,
                        channel_base=128, channel_max=16, mbstd_group_size=4, num_fp16_res=0, conv_clamp=None,
                        g_architecture="skip", d_architecture="resnet", use_sel=False)


def tiny_network(kind: str, name: str = "stylegan2", overrides: dict | None = None, **spec_changes) -> torch.nn.Module:
    """A tiny registered network, "G" or "D": TINY_SPEC with `spec_changes` (img_resolution, c_dim,
    channel_base, g_architecture, use_sel, ...) and constructor `overrides` on top."""
    registry = GENERATORS if kind == "G" else DISCRIMINATORS
    return build_network(registry.get(name), dataclasses.replace(TINY_SPEC, **spec_changes), overrides)
