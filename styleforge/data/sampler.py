"""`InfiniteSampler`: an endless, seeded stream of data set indices, sharded across ranks, resumable."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch


class InfiniteSampler(torch.utils.data.Sampler):
    """Yields indices forever from one global stream: epoch after epoch, each a permutation of
    range(size) seeded by (seed, epoch) (or range(size) itself without shuffle).

    Position i of the global stream goes to rank i % num_replicas, so the ranks' shards are disjoint
    and together cover the set every epoch. `start` is how many indices this rank has already consumed:
    a run resumed with it continues exactly where it stopped.
    """

    def __init__(self, size: int, rank: int = 0, num_replicas: int = 1, shuffle: bool = True, seed: int = 0,
                 start: int = 0):
        if size < 1:
            raise ValueError(f"size must be positive, got {size}")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} is not in [0, num_replicas={num_replicas})")
        if start < 0:
            raise ValueError(f"start must be >= 0, got {start}")
        super().__init__()
        self.size, self.rank, self.num_replicas = size, rank, num_replicas
        self.shuffle, self.seed, self.start = shuffle, seed, start

    def epoch_order(self, epoch: int) -> np.ndarray:
        """The global stream's indices for one epoch, int64 [size]."""
        if not self.shuffle:
            return np.arange(self.size)
        return np.random.default_rng([self.seed, epoch]).permutation(self.size)

    def __iter__(self) -> Iterator[int]:
        position = self.start * self.num_replicas + self.rank  # in the global stream
        epoch, order = -1, None
        while True:
            if position // self.size != epoch:
                epoch = position // self.size
                order = self.epoch_order(epoch)
            yield int(order[position % self.size])
            position += self.num_replicas
