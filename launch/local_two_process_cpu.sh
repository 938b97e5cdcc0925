#!/usr/bin/env bash
# Two JAX processes on this machine, coordinated over loopback, with gloo collectives on CPU:
# the multi-host code path (jax.distributed, per-process data shards, cross-process pmean,
# checkpoints written by both) without a cluster.
#
#   launch/local_two_process_cpu.sh --flagfile=experiments/flags/pretrain_toy.flags \
#       --run_dir=runs/two_process [more flags]
#
# Environment: SCRIPT (default experiments/pretrain.py), PYTHON (default python),
# DEVICES_PER_PROCESS (fake CPU devices per process, default 1), PORT (default: a free one).
# Each output line is prefixed with its process index. If one process fails, the other is
# stopped and the script exits with the failure's status. SIGTERM or SIGINT to this script is
# passed to both processes, which save the step they reach together and stop (JAX holds SIGTERM
# in multi-process runs; jaxcnn.train.loop); rerunning the same command resumes there. Processes
# still running after STOP_GRACE_S seconds (default 60) are killed; earlier checkpoints stay.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
SCRIPT=${SCRIPT:-experiments/pretrain.py}
PORT=${PORT:-$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
export JAX_PLATFORMS=cpu
export XLA_FLAGS="--xla_force_host_platform_device_count=${DEVICES_PER_PROCESS:-1}"

pids=()
stop() {
  trap - TERM INT
  echo "launcher: stopping both processes" >&2
  kill -TERM "${pids[@]}" 2>/dev/null || true
  for ((t = 0; t < ${STOP_GRACE_S:-60}; t++)); do
    alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    ((alive)) || break
    sleep 1
  done
  kill -KILL "${pids[@]}" 2>/dev/null || true
  exit 143
}
trap stop TERM INT
for i in 0 1; do
  "$PYTHON" "$SCRIPT" "$@" --coordinator_address="127.0.0.1:$PORT" --num_processes=2 \
      --process_id="$i" > >(sed -u "s/^/[process $i] /") 2>&1 &
  pids+=($!)
done
# Wait for both (portable: no `wait -n`); if one fails, stop the other.
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
