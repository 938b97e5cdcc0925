#!/usr/bin/env bash
# The transfer grid on a cluster: every task of this SLURM job array is one worker on one GPU
# that claims networks from the shared --run_dir until the grid is done (a task finding nothing
# left to claim exits; one waiting for a base network polls every --poll_s seconds).
#
#   sbatch --array=0-63 launch/transfer_slurm_array.sh \
#       --flagfile=experiments/flags/transfer_imagenet.flags --run_dir=/shared/runs/transfer_imagenet
#
# --run_dir (and --data_dir) must be on a filesystem every node sees and that supports POSIX
# locks (fcntl; NFSv4 does, Lustre needs the `flock` mount option): a job is claimed by locking
# <run_dir>/jobs/<job>/claim.lock. A task killed (time limit, node failure) releases its claim;
# submitting the array again resumes its networks from their checkpoints. Results:
# <run_dir>/report (written by the task that finishes the grid).
#SBATCH --job-name=jaxcnn-transfer
#SBATCH --array=0-31
#SBATCH --ntasks=1
#SBATCH --gpus-per-task=1
#SBATCH --cpus-per-task=8
#SBATCH --time=72:00:00
#SBATCH --output=jaxcnn-transfer-%A_%a.out
set -euo pipefail
cd "${SLURM_SUBMIT_DIR:-$(dirname "$0")/..}"
PYTHON=${PYTHON:-python}
export XLA_PYTHON_CLIENT_PREALLOCATE=${XLA_PYTHON_CLIENT_PREALLOCATE:-false}
exec "$PYTHON" experiments/transfer.py --poll_s=60 "$@"
