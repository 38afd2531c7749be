"""GAN phases as plain data: which network a phase trains, with which optimizer, how often.

Lazy regularisation (StyleGAN2) splits a network's training into a main phase run every step and a
regularisation phase run every `interval` steps. The optimizer of both is built with lr * k/(k+1) and
betas ** (k/(k+1)) (k = interval), which keeps the effective step of the combined phases unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Phase:
    name: str  # Gmain, Greg, Gboth, Dmain, Dreg, Dboth
    module: torch.nn.Module
    opt: torch.optim.Optimizer
    interval: int = 1  # runs when batch_idx % interval == 0; its loss is scaled by interval


def lazy_ratio(reg_interval: int) -> float:
    """k / (k + 1) for lazy regularization every k steps (1 without)."""
    return reg_interval / (reg_interval + 1) if reg_interval else 1.0


def make_optimizer(
    module: torch.nn.Module, lr: float, betas: tuple[float, float], eps: float, reg_interval: int
) -> torch.optim.Adam:
    ratio = lazy_ratio(reg_interval)
    return torch.optim.Adam(
        module.parameters(), lr=lr * ratio, betas=(betas[0] ** ratio, betas[1] ** ratio), eps=eps
    )


def set_learning_rate(opt: torch.optim.Optimizer, lr: float, reg_interval: int) -> None:
    """A new learning rate (e.g. per resolution while growing), with the same lazy-regularization ratio."""
    for group in opt.param_groups:
        group["lr"] = lr * lazy_ratio(reg_interval)


def make_phases(name: str, module: torch.nn.Module, opt: torch.optim.Optimizer, reg_interval: int) -> list[Phase]:
    """`name` is "G" or "D". With reg_interval 0 the regulariser runs every step inside `{name}both`."""
    if not reg_interval:
        return [Phase(f"{name}both", module, opt, 1)]
    return [Phase(f"{name}main", module, opt, 1), Phase(f"{name}reg", module, opt, reg_interval)]
