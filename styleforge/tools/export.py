"""Export of a generator (mapping + synthesis) to ONNX or TorchScript, checked against PyTorch.

The exported graph takes z [N, z_dim] (and c [N, c_dim] for a conditional G) and returns images
[N, C, H, W] in about [-1, 1]. Truncation and noise are fixed at export time: noise 'const' (G's
stored noise maps) or 'none'; random noise would make the check meaningless.
"""

from __future__ import annotations

import inspect
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from styleforge.errors import UserError
from styleforge.inference.seeds import seeds_to_z

FORMATS = ("onnx", "torchscript")
EXPORT_NOISE_MODES = ("const", "none")
TOLERANCE = 1e-4
# Traced with a batch of 2 (a batch of 1 would be specialized as a constant by torch.export) and checked with 3,
# so the check also covers a batch size other than the traced one.
TRACE_SEEDS = [0, 1]
CHECK_SEEDS = [0, 1, 2]


class ExportableGenerator(torch.nn.Module):
    """G as one function of (z[, c]), with truncation and noise mode frozen."""

    def __init__(self, G: torch.nn.Module, psi: float = 1.0, truncation_cutoff: int | None = None,
                 noise_mode: str = "const"):
        super().__init__()
        if noise_mode not in EXPORT_NOISE_MODES:
            raise UserError(f"noise mode '{noise_mode}' cannot be exported; choose one of {EXPORT_NOISE_MODES}")
        self.G = G
        self.psi, self.truncation_cutoff, self.noise_mode = psi, truncation_cutoff, noise_mode
        # StyleGAN2's fused modulated conv groups the convolution by sample, which tracing would freeze to the
        # traced batch size; the unfused path computes the same for any batch.
        accepts = inspect.signature(G.synthesis.forward).parameters
        self.synthesis_kwargs = {"fused_modconv": False} if "fused_modconv" in accepts else {}

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        if c is None:
            c = z.new_zeros([z.shape[0], self.G.c_dim])
        ws = self.G.mapping(z, c, truncation_psi=self.psi, truncation_cutoff=self.truncation_cutoff)
        return self.G.synthesis(ws, noise_mode=self.noise_mode, **self.synthesis_kwargs)  # [N, C, H, W]


@dataclass
class ExportResult:
    path: Path
    max_abs_diff: float  # between the exported model and PyTorch on CHECK_SEEDS


def example_inputs(G: torch.nn.Module, seeds: list[int], device: torch.device) -> tuple[torch.Tensor, ...]:
    """(z,) or (z, c) with one-hot labels cycling through the classes."""
    z = seeds_to_z(seeds, G.z_dim, device)
    if not G.c_dim:
        return (z,)
    c = torch.nn.functional.one_hot(torch.arange(len(seeds), device=device) % G.c_dim, G.c_dim).float()
    return (z, c)


def _export_torchscript(model: torch.nn.Module, inputs: tuple[torch.Tensor, ...], path: Path) -> None:
    with warnings.catch_warnings():
        # Shape-dependent Python branches are expected; TorchScript is deprecated in torch 2.x but still the format
        # that C++ (libtorch) deployments load.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        traced = torch.jit.trace(model, inputs, check_trace=False)
    traced.save(str(path))


def _run_torchscript(path: Path, inputs: tuple[torch.Tensor, ...]) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        loaded = torch.jit.load(str(path), map_location=inputs[0].device)
    with torch.no_grad():
        return loaded(*inputs).float().cpu().numpy()


def _input_names(inputs: tuple[torch.Tensor, ...]) -> list[str]:
    return ["z", "c"][:len(inputs)]


def _export_onnx(model: torch.nn.Module, inputs: tuple[torch.Tensor, ...], path: Path) -> None:
    try:
        import onnxscript  # noqa: F401  (torch's ONNX exporter needs it)
    except ImportError as e:
        raise UserError(f"ONNX export needs the `export` extra: pip install 'styleforge[export]' ({e})") from e
    batch = torch.export.Dim("batch", min=1)
    names = _input_names(inputs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter is chatty about graph rewrites
        torch.onnx.export(model, inputs, str(path), input_names=names, output_names=["img"], dynamo=True, verbose=False,
                          external_data=False, dynamic_shapes={name: {0: batch} for name in names})


def _run_onnx(path: Path, inputs: tuple[torch.Tensor, ...]) -> np.ndarray:
    try:
        import onnxruntime
    except ImportError as e:
        raise UserError(f"checking an ONNX export needs onnxruntime: pip install 'styleforge[export]' ({e})") from e
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {name: x.float().cpu().numpy() for name, x in zip(_input_names(inputs), inputs)}
    return session.run(None, feeds)[0]


EXPORTERS = {"onnx": (_export_onnx, _run_onnx), "torchscript": (_export_torchscript, _run_torchscript)}


@torch.no_grad()
def export_generator(
    G: torch.nn.Module,
    path: str | os.PathLike,
    format: str = "onnx",
    psi: float = 1.0,
    truncation_cutoff: int | None = None,
    noise_mode: str = "const",
    tolerance: float = TOLERANCE,
) -> ExportResult:
    """Exports G and checks the file: the exported model's images on CHECK_SEEDS must match PyTorch's to
    `tolerance` (max abs difference), else UserError and no file is left behind."""
    if format not in FORMATS:
        raise UserError(f"format '{format}': choose one of {FORMATS}")
    export, run_exported = EXPORTERS[format]
    path = Path(path)
    model = ExportableGenerator(G, psi, truncation_cutoff, noise_mode).eval()
    device = next(G.parameters()).device
    # Written beside the destination and moved there once checked.
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = tempfile.mkdtemp(prefix=".export-", dir=path.parent)
    tmp = Path(tmp_dir) / path.name
    try:
        export(model, example_inputs(G, TRACE_SEEDS, device), tmp)
        inputs = example_inputs(G, CHECK_SEEDS, device)
        expected = model(*inputs).float().cpu().numpy()
        diff = float(np.abs(run_exported(tmp, inputs) - expected).max())
        if not diff <= tolerance:
            raise UserError(f"{path}: exported {format} model differs from PyTorch by {diff:.3g} (max abs) "
                            f"> tolerance {tolerance:g}; not saved")
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return ExportResult(path=path, max_abs_diff=diff)
