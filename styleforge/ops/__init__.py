"""Low-level differentiable operations: equalized-lr layers, bias + activation, FIR resampling."""
