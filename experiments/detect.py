"""R-CNN detection with any pre-trained network (paper §3.1, Tables 1, 2, 4, 8; thesis 2.3).

  python experiments/detect.py --flagfile=experiments/flags/detect_toy.flags

For the source network (a training run at --source_step) and each of --regimes -- none (the
network as it is), ft, fc-ft, scratch (window fine-tuning, classes + background) -- the script
caches pool5 of every window in float16, trains the per-class SVMs with hard-negative mining on
--layers (and conv5 with --conv5_ablations), detects on the test split (top 100 per class and
image, NMS 0.3) and writes per-class APs (JSON, CSV, Markdown), precision-recall curves, a
figure of top detections, and summary.json / summary.md to --out_dir. Every stage is cached.
The settings' flags are generated from `jaxcnn.detect`'s `Networks`, `DataSpec` (with the
`SearchConfig`, flags --ss_*), `DetectorSpec` (with the `MiningConfig`) and `FinetuneSpec`
(flags --ft_* and --scratch_*).
"""

import logging

import config_flags
import errors
from absl import app, flags

from jaxcnn import detect

FLAGS = flags.FLAGS
flags.DEFINE_string("source_run", None, "Pre-training run directory.", required=True)
flags.DEFINE_string("out_dir", None, "Output and cache folder.", required=True)
config_flags.define(detect.Networks, skip=("source_run",))
config_flags.define(detect.DataSpec)
config_flags.define(detect.DetectorSpec)
config_flags.define(detect.FinetuneSpec)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")
    logging.getLogger("absl").setLevel(logging.ERROR)
    nets = config_flags.build(detect.Networks, source_run=FLAGS.source_run)
    data = config_flags.build(detect.DataSpec)
    detectors = config_flags.build(detect.DetectorSpec)
    finetune = config_flags.build(detect.FinetuneSpec)
    print(f"{nets}\ndata {data}\ndetectors {detectors}\nfine-tuning {finetune}", flush=True)
    detect.run_detection(
        data,
        detectors,
        finetune,
        FLAGS.out_dir,
        source_run=nets.source_run,
        source_step=nets.source_step,
        regimes=nets.regimes,
        log=lambda line: print(line, flush=True),
    )
    print(open(f"{FLAGS.out_dir}/summary.md").read(), flush=True)


if __name__ == "__main__":
    errors.run(main)
