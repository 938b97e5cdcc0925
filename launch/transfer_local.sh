#!/usr/bin/env bash
# Spread the transfer grid (experiments/transfer.py) over this machine: WORKERS processes claim
# jobs from the same --run_dir until every network of the grid is trained, one GPU per worker
# when there are GPUs (JAX processes that do not talk to each other: each trains whole networks).
#
#   launch/transfer_local.sh --flagfile=experiments/flags/transfer_toy.flags
#   WORKERS=8 launch/transfer_local.sh --flagfile=experiments/flags/transfer_imagenet.flags \
#       --run_dir=/data/runs/transfer_imagenet
#
# Environment: WORKERS (default: the number of GPUs, else 2), PYTHON (default python). Output
# lines are prefixed with the worker index. If a worker fails, the others are stopped and the
# script exits with the failure's status; running it again resumes the grid (a worker killed
# mid-job leaves no stale claim: its job is taken over and resumes from its checkpoints).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
gpus=$( (nvidia-smi -L 2>/dev/null || true) | grep -c '^GPU' || true)
WORKERS=${WORKERS:-$((gpus > 0 ? gpus : 2))}
export XLA_PYTHON_CLIENT_PREALLOCATE=${XLA_PYTHON_CLIENT_PREALLOCATE:-false}

pids=()
for ((i = 0; i < WORKERS; i++)); do
  if ((gpus > 0)); then
    device=(env CUDA_VISIBLE_DEVICES=$((i % gpus)))
  else
    device=(env JAX_PLATFORMS=cpu)
  fi
  "${device[@]}" "$PYTHON" experiments/transfer.py "$@" > >(sed -u "s/^/[worker $i] /") 2>&1 &
  pids+=($!)
done
# Wait for all (portable: no `wait -n`); if one fails, stop the others.
status=0
remaining=("${pids[@]}")
while ((${#remaining[@]})); do
  next=()
  for pid in "${remaining[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      next+=("$pid")
    elif ! wait "$pid"; then
      status=1
      kill "${pids[@]}" 2>/dev/null || true
    fi
  done
  remaining=(${next[@]+"${next[@]}"})
  if ((${#remaining[@]})); then sleep 1; fi
done
exit $status
