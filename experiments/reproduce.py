"""The paper's whole study in one command: data, pre-training, fine-tuning, probes,
selectivity, report (jaxcnn.study.run_study).

  python experiments/reproduce.py --flagfile=experiments/flags/reproduce_toy.flags

Every stage is cached in --workdir under a key of its settings: re-running skips finished
stages, an interrupted run resumes, and changing one flag re-runs only what depends on it.
The flags are generated from `jaxcnn.study.StudyConfig` (experiments/config_flags.py).
"""

import logging
import time

import config_flags
import errors
import jax
from absl import app, flags

from jaxcnn import study
from jaxcnn.train import host_devices

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Folder of the study's stages and report.", required=True)
config_flags.define(study.StudyConfig)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")
    logging.getLogger("absl").setLevel(logging.ERROR)  # Orbax notes on read-only restores
    cfg = config_flags.build(study.StudyConfig)
    if cfg.network.preset == "small":  # before JAX starts; measured for this preset (§2.8)
        host_devices.split_host_cores()
    print(f"config: {cfg}\ndevices: {jax.devices()}", flush=True)
    start = time.perf_counter()
    out = study.run_study(cfg, FLAGS.workdir, emit=lambda s: print(s, flush=True))
    print("\nstage timings (s):")
    for name, seconds, cached in out["timings"]:
        print(f"  {name:<40s} {seconds:8.1f}{'  (cached)' if cached else ''}")
    print(f"total wall time of this call: {time.perf_counter() - start:.0f} s")
    print(f"report: {out['report_md']}\n        {out['report_html']}")


if __name__ == "__main__":
    errors.run(main)
