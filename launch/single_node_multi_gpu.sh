#!/usr/bin/env bash
# One process driving every GPU of this machine: the global batch is split over the local
# devices and gradients are averaged, by sharded jax.jit on GPUs by default (--parallelism=auto;
# --parallelism=pmap for jax.pmap with lax.pmean).
#
#   launch/single_node_multi_gpu.sh --flagfile=experiments/flags/pretrain_imagenet.flags \
#       --run_dir=/data/runs/caffenet [more flags]
#
# Environment: SCRIPT (default experiments/pretrain.py), PYTHON (default python),
# CUDA_VISIBLE_DEVICES to choose GPUs. --batch_size is global and must divide by the number of
# GPUs. Add --compute_dtype=bfloat16 for bfloat16 compute (parameters stay float32).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
SCRIPT=${SCRIPT:-experiments/pretrain.py}
# Let XLA allocate GPU memory as needed rather than pre-allocating 75% (several runs can share).
export XLA_PYTHON_CLIENT_PREALLOCATE=${XLA_PYTHON_CLIENT_PREALLOCATE:-false}
"$PYTHON" -c 'import jax; print("devices:", jax.local_devices())'
exec "$PYTHON" "$SCRIPT" "$@"
