"""The paper's whole study in one command: data, pre-training, fine-tuning, probes,
selectivity, report (jaxcnn.reproduce.run_study).

  python experiments/reproduce.py --flagfile=experiments/flags/reproduce_toy.flags

Every stage is cached in --workdir under a key of its settings: re-running skips finished
stages, an interrupted run resumes, and changing one flag re-runs only what depends on it.
"""

import dataclasses
import logging
import time

import jax
from absl import app, flags

from jaxcnn import reproduce, study

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Folder of the study's stages and report.", required=True)
_DEFAULTS = study.StudyConfig()
for field in dataclasses.fields(study.StudyConfig):
    default = getattr(_DEFAULTS, field.name)
    helptext = f"StudyConfig.{field.name}"
    if isinstance(default, bool):
        flags.DEFINE_bool(field.name, default, helptext)
    elif isinstance(default, int):
        flags.DEFINE_integer(field.name, default, helptext)
    elif isinstance(default, float):
        flags.DEFINE_float(field.name, default, helptext)
    elif isinstance(default, tuple):
        flags.DEFINE_list(field.name, [str(v) for v in default], helptext)
    else:
        flags.DEFINE_string(field.name, default, helptext)


def config_from_flags() -> study.StudyConfig:
    values = {}
    for field in dataclasses.fields(study.StudyConfig):
        value = getattr(FLAGS, field.name)
        if isinstance(getattr(_DEFAULTS, field.name), tuple):
            value = tuple(int(v) for v in value)
        values[field.name] = value
    return study.StudyConfig(**values)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")
    logging.getLogger("absl").setLevel(logging.ERROR)  # Orbax notes on read-only restores
    cfg = config_from_flags()
    print(f"config: {cfg}\ndevices: {jax.devices()}", flush=True)
    start = time.perf_counter()
    out = reproduce.run_study(cfg, FLAGS.workdir, emit=lambda s: print(s, flush=True))
    print("\nstage timings (s):")
    for name, seconds, cached in out["timings"]:
        print(f"  {name:<40s} {seconds:8.1f}{'  (cached)' if cached else ''}")
    print(f"total wall time of this call: {time.perf_counter() - start:.0f} s")
    print(f"report: {out['report_md']}\n        {out['report_html']}")


if __name__ == "__main__":
    app.run(main)
