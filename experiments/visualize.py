"""What the units see (Zeiler & Fergus 2014) for any run, or a pre-trained / fine-tuned pair:
top-9 grids (deconvnet projections beside image patches) of random units per conv layer and of
the conv-5 grandmother-cell candidates, occlusion sensitivity maps, and feature evolution over the
pre-training snapshots beside the conv-1 filters.

  python experiments/visualize.py --pre_run_dir=runs/study_toy/pretrain-<key>/run \
      --ft_run_dir=runs/study_toy/finetune-det-ft-<key>/run --out_dir=runs/visualize

Units are shown on --dataset/--split (default: the toyworld PASCAL stand-in's test GT boxes, as
the selectivity analysis uses); occlusion of the pre-trained network and the feature evolution
use --source_dataset/--source_split. Writes PNGs and figures.json (name -> path) to --out_dir.
The settings' flags are generated from `jaxcnn.visualize.figures.FigureSpec`.
"""

import json
import logging
import os

import config_flags
import errors
import jax
from absl import app, flags

from jaxcnn.visualize import figures

FLAGS = flags.FLAGS
flags.DEFINE_string("pre_run_dir", None, "Pre-trained run (or any run).", required=True)
flags.DEFINE_string("ft_run_dir", "", "Fine-tuned run ('': visualise --pre_run_dir alone).")
flags.DEFINE_string("out_dir", None, "Output folder.", required=True)
flags.DEFINE_string("readme_dir", "", "Also write the README's two small figures here.")
config_flags.define(figures.FigureSpec)


def readme_figures(ft_run, images, source, chosen, captions):
    """visualize-top9.png: four candidates of the fine-tuned network (or the run), and
    visualize-occlusion.png: the pre-trained network on its own classes; small (dpi 85)."""
    net = figures.load_network(ft_run or FLAGS.pre_run_dir)
    tag = "ft" if ft_run else "pre"
    picks = {"conv5": chosen["conv5"][:4]} if chosen else {"conv5": [0, 1, 2, 3]}
    four = {"conv5": captions["conv5"][:4]} if captions else None
    grid = figures.top_grids(net, figures.image_set(images), FLAGS.readme_dir, tag, picks,
                             captions=four, dpi=85)  # fmt: skip
    top9 = os.path.join(FLAGS.readme_dir, "visualize-top9.png")
    os.replace(grid[f"top9-{tag}-conv5"], top9)
    split = figures.image_set(source if source is not None else images)
    occ = figures.occlusion_figure(
        figures.load_network(FLAGS.pre_run_dir), split,
        os.path.join(FLAGS.readme_dir, "visualize-occlusion.png"), tag="pre", dpi=85,
    )  # fmt: skip
    return {"readme-top9": top9, "readme-occlusion": occ}


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")
    logging.getLogger("absl").setLevel(logging.ERROR)
    spec = config_flags.build(figures.FigureSpec)
    images, source = spec.images(), spec.source_images()
    print(f"devices: {jax.devices()}\nimages: {images}\nsource: {source}")
    ft_run = FLAGS.ft_run_dir or None
    chosen, captions = None, None
    if spec.num_candidates:
        net = figures.load_network(ft_run or FLAGS.pre_run_dir)
        channels, labels = figures.grandmother_candidates(
            net, figures.image_set(images), max_units=spec.num_candidates
        )
        chosen, captions = {"conv5": channels}, {"conv5": labels}
        print("conv5 candidates:", ", ".join(labels))
    paths = figures.report_figures(
        FLAGS.out_dir, pre_run=FLAGS.pre_run_dir, ft_run=ft_run, images=images,
        source_images=source, units_by_layer=chosen, captions=captions,
        num_random=spec.num_random, occlusion_count=spec.occlusion_images, seed=spec.seed,
    )  # fmt: skip
    if FLAGS.readme_dir:
        paths.update(readme_figures(ft_run, images, source, chosen, captions))
    os.makedirs(FLAGS.out_dir, exist_ok=True)
    with open(os.path.join(FLAGS.out_dir, "figures.json"), "w") as f:
        json.dump(paths, f, indent=1)
    print("\n".join(f"{k}: {v}" for k, v in sorted(paths.items())))


if __name__ == "__main__":
    errors.run(main)
