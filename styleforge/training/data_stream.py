"""Which real images each rank trains on: the global stream of one seeded sampler, cut into chunks of
`batch_gpu`; chunk j of a step belongs to rank j % world_size. So the union over ranks of a step's
images is the same global batch whatever the number of ranks, and resuming at a position continues the
same stream."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from styleforge.data.sampler import InfiniteSampler


class ChunkSampler(torch.utils.data.Sampler):
    def __init__(self, size: int, seed: int, start: int, batch_gpu: int, chunks_per_step: int, rank: int,
                 world_size: int):
        self.size, self.seed, self.start = size, seed, start
        self.batch_gpu, self.chunks_per_step = batch_gpu, chunks_per_step
        self.rank, self.world_size = rank, world_size

    def __iter__(self) -> Iterator[int]:
        stream = InfiniteSampler(self.size, rank=0, num_replicas=1, shuffle=True, seed=self.seed, start=self.start)
        for offset, index in enumerate(stream):  # `start` is the first image of a step
            chunk_in_step = (offset // self.batch_gpu) % self.chunks_per_step
            if chunk_in_step % self.world_size == self.rank:
                yield index
