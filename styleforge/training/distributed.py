"""Multi-process training through torchrun (env://): NCCL on CUDA, gloo on CPU.

Gradients are averaged by one all-reduce of a flat buffer per phase (as stylegan2-ada-pytorch does),
not by DistributedDataParallel: R1 and path-length regularisation need double backward, which DDP's
hooks do not support. A collective that fails because a peer died becomes a clear error, not a hang.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


class PeerFailure(RuntimeError):
    """Another rank stopped (crashed, was killed, or timed out); this rank exits too."""


@dataclass(frozen=True)
class DistEnv:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_from_env(timeout_s: float = 600.0) -> DistEnv:
    """Joins the process group described by torchrun's environment variables; a no-op for one process."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return DistEnv()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend, init_method="env://", timeout=datetime.timedelta(seconds=timeout_s))
    return DistEnv(rank=rank, world_size=world_size, local_rank=local_rank)


def _collective(fn, *args):
    try:
        return fn(*args)
    except (RuntimeError, dist.DistBackendError) as e:
        rank = dist.get_rank() if dist.is_initialized() else "?"
        raise PeerFailure(f"rank {rank}: a collective operation failed, another process probably died ({e})") from e


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sums `tensor` over ranks in place (and returns it)."""
    if dist.is_initialized() and dist.get_world_size() > 1:
        _collective(dist.all_reduce, tensor)
    return tensor


def all_mean(tensor: torch.Tensor) -> torch.Tensor:
    """The mean of `tensor` over ranks (a new tensor)."""
    if not (dist.is_initialized() and dist.get_world_size() > 1):
        return tensor
    return all_reduce_sum(tensor.clone()) / dist.get_world_size()


def sum_gradients(params: list[torch.nn.Parameter]) -> None:
    """Sums the gradients of `params` over ranks with a single all-reduce (missing ones count as zeros)."""
    if not (dist.is_initialized() and dist.get_world_size() > 1) or not params:
        return
    flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).flatten() for p in params])
    all_reduce_sum(flat)
    for p, g in zip(params, flat.split([p.numel() for p in params])):
        p.grad = g.view_as(p).clone()


def broadcast_module(module: torch.nn.Module) -> None:
    """Copies rank 0's parameters and buffers to every rank."""
    if dist.is_initialized() and dist.get_world_size() > 1:
        for tensor in list(module.parameters()) + list(module.buffers()):
            _collective(dist.broadcast, tensor.data, 0)


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
