#!/usr/bin/env bash
# The GPU check, prepared for when a GPU is lent: on one GPU, in under 8 minutes, prints sec/kimg and peak GPU
# memory of StyleGAN2 at 256 px with the paper256 preset (batch 64): eager float32, float16 on the top 4
# resolutions with conv_clamp 256, then compiled (its compile time is the "setup s" column).
# Needs a Python with CUDA torch, numpy, pillow, safetensors, tqdm (PYTHON, default python3); StyleForge is
# used from this checkout. Each part has its own time limit, so one slow part cannot take the rest down.
#     bash benchmarks/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
start=$SECONDS
timeout 170 "$PYTHON" benchmarks/bench_paper256.py --variants eager fp16 || echo "eager/fp16 part failed or timed out"
timeout 270 "$PYTHON" benchmarks/bench_paper256.py --variants compiled compiled+fp16 --warmup 6 \
    || echo "compiled part failed or timed out"
echo "gpu_check: $((SECONDS - start)) s"
