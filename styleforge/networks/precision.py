"""Per-block dtype and memory layout of the convolutional networks.

Blocks flagged `use_fp16` (the top `num_fp16_res` resolutions) run in a reduced dtype (float16 as
the official code, or bfloat16) on accelerators; on CPUs they stay in full precision unless asked
(`reduced_on_cpu`), since CPUs gain from bfloat16 autocast instead. Activations are kept
channels_last on CPUs, where depthwise FIR filters and convolutions are several times faster in that
layout, and in reduced-precision blocks elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Precision:
    float_dtype: torch.dtype = torch.float32
    reduced_dtype: torch.dtype | None = None  # None: blocks flagged use_fp16 stay in float_dtype
    channels_last: bool = False
    reduced_channels_last: bool = True

    @staticmethod
    def choose(
        device: torch.device,
        float_dtype: torch.dtype = torch.float32,
        reduced_dtype: torch.dtype = torch.float16,
        force_fp32: bool = False,
        reduced_on_cpu: bool = False,
        channels_last: bool | None = None,
    ) -> Precision:
        on_cpu = torch.device(device).type == "cpu"
        use_reduced = not force_fp32 and (not on_cpu or reduced_on_cpu)
        return Precision(
            float_dtype=float_dtype,
            reduced_dtype=reduced_dtype if use_reduced else None,
            channels_last=on_cpu if channels_last is None else channels_last,
            reduced_channels_last=True if channels_last is None else channels_last,
        )

    def for_block(self, use_fp16: bool) -> tuple[torch.dtype, torch.memory_format]:
        """(dtype, memory format) of a block's activations."""
        if use_fp16 and self.reduced_dtype is not None:
            layout = self.reduced_channels_last
            return self.reduced_dtype, torch.channels_last if layout else torch.contiguous_format
        return self.float_dtype, torch.channels_last if self.channels_last else torch.contiguous_format
