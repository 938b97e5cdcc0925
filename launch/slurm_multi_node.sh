#!/usr/bin/env bash
# Multi-node data-parallel training under SLURM: one task (process) per node, every GPU of
# the node driven by that process. jax.distributed.initialize() detects the coordinator,
# process count and index from SLURM's environment; each process reads its own data shard.
#
#   sbatch launch/slurm_multi_node.sh --flagfile=experiments/flags/pretrain_imagenet.flags \
#       --run_dir=/shared/runs/caffenet
#
# --run_dir and --data_dir must be on a filesystem every node sees (checkpoints are written
# jointly by all processes). --batch_size is global: it must divide by nodes x GPUs per node.
#SBATCH --job-name=jaxcnn-pretrain
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node=8
#SBATCH --cpus-per-task=16
#SBATCH --time=72:00:00
#SBATCH --output=jaxcnn-%j.out
set -euo pipefail
cd "${SLURM_SUBMIT_DIR:-$(dirname "$0")/..}"
PYTHON=${PYTHON:-python}
SCRIPT=${SCRIPT:-experiments/pretrain.py}
export XLA_PYTHON_CLIENT_PREALLOCATE=${XLA_PYTHON_CLIENT_PREALLOCATE:-false}
srun --kill-on-bad-exit=1 "$PYTHON" "$SCRIPT" "$@"
