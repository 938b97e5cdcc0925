"""The visualisation figures of a run, or of a pre-trained / fine-tuned pair, from run folders.

`report_figures` is what the study's report (and `experiments/visualize.py`) calls: top-9 grids
of random units per layer and of chosen units (e.g. the grandmother-cell candidates of the
selectivity analysis, `grandmother_units`), occlusion maps of a few correctly classified images,
and the strongest activation of a few units over the pre-training snapshots beside the conv-1
filters of those snapshots. `FigureSpec` states the images and counts of the script (its flags
are generated from it).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence

import numpy as np

from jaxcnn import model
from jaxcnn.data import boxes, pipeline, sources
from jaxcnn.features.sets import VIEWS, FeatureSet, open_view
from jaxcnn.selectivity import grandmother
from jaxcnn.selectivity import plots as analysis_plots
from jaxcnn.storage import checkpoints
from jaxcnn.visualize import occlusion, plots, projection, units

CONV_LAYERS = ("conv1", "conv2", "conv3", "conv4", "conv5")
NAMES = {"pre": "pre-trained", "ft": "fine-tuned"}


def _f(default, help_text, **meta):
    return dataclasses.field(default=default, metadata={"help": help_text, **meta})


def _source_dataset(name: str) -> None:
    if name:
        sources.dataset_spec(name)


@dataclasses.dataclass(frozen=True)
class FigureSpec:
    """The images the figures show and how many units (experiments/visualize.py's flags).

    The units are shown on `dataset`/`split` (default: the toyworld PASCAL stand-in's test GT
    boxes, as the selectivity analysis uses); the pre-trained network's occlusion maps and the
    feature evolution use `source_dataset`/`source_split` ('': `dataset` too)."""

    dataset: str = _f(
        "toyworld/scenes", "Images the units are shown on.", check=sources.dataset_spec
    )
    split: str = _f("test", "Their split.", choices=sources.SPLITS)
    view: str = _f("gt_boxes", "Whole images or GT-box crops.", choices=VIEWS)
    mean_split: str = _f(
        "trainval", "Split whose mean the fine-tuned run subtracts.", choices=sources.SPLITS
    )
    source_dataset: str = _f(
        "toyworld/source", "Pre-training dataset ('': none).", check=_source_dataset
    )
    source_split: str = _f(
        "validation", "Its split for occlusion and evolution.", choices=sources.SPLITS
    )
    max_images: int = _f(1000, "Use the first N images of each split (0: all).")
    data_dir: str = _f("", "TFDS data_dir ('': default).")
    crop: int = _f(64, "Network input size (227 for CaffeNet).")
    resize: int = _f(72, "Resize before cropping (256 for CaffeNet).")
    num_random: int = _f(8, "Random live units per conv layer.")
    num_candidates: int = _f(8, "conv-5 grandmother-cell candidates (0: none).")
    occlusion_images: int = _f(3, "Images in each occlusion figure.")
    seed: int = _f(0, "Seed of the random units.")

    def __post_init__(self):
        sources.check_split(self.dataset, self.split, "split")
        sources.check_split(self.dataset, self.mean_split, "mean_split")
        if self.source_dataset:
            sources.check_split(self.source_dataset, self.source_split, "source_split")
        if self.view == "gt_boxes" and sources.dataset_spec(self.dataset).kind != "detection":
            raise ValueError(f"--view=gt_boxes: {self.dataset} has no boxes; use --view=image")
        counts = (self.max_images, self.num_random, self.num_candidates, self.occlusion_images)
        if min(counts) < 0:
            raise ValueError(
                "need --max_images, --num_random, --num_candidates, --occlusion_images >= 0"
            )
        self.images()  # checks view, crop and resize

    def _common(self) -> dict:
        return dict(
            data_dir=self.data_dir, crop=self.crop, resize=self.resize, max_examples=self.max_images
        )

    def images(self) -> FeatureSet:
        """The images the units are shown on."""
        return FeatureSet(self.dataset, self.split, self.view, self.mean_split, **self._common())

    def source_images(self) -> FeatureSet | None:
        """The pre-training images (None: none named)."""
        if not self.source_dataset:
            return None
        return FeatureSet(self.source_dataset, self.source_split, **self._common())


def load_network(run_dir: str, step: int | None = None):
    """(module, params) of a run's checkpoint (`step` None: the latest)."""
    return model.module_from_run(run_dir, step), checkpoints.restore_params(run_dir, step)


def _first_label(record) -> int:
    label = np.asarray(record["label"])
    return int(label) if label.ndim == 0 else int(np.flatnonzero(label == 1)[0])


def image_set(fs: FeatureSet, *, batch_size: int = 128) -> units.ImageSet:
    """A `FeatureSet`'s images (whole images or GT-box crops) as a `units.ImageSet`; the label
    of a multi-label image is its first present class."""
    source, transform, names = open_view(fs)
    if transform is None:  # GT boxes: the records are network inputs already
        mean, box_labels = source.mean, np.asarray(source.labels)
        inputs = lambda idx: np.stack([source[int(i)]["image"] for i in idx])  # noqa: E731
        label = lambda i: int(box_labels[i])  # noqa: E731
    else:
        mean = boxes.center_mean(transform.mean, fs.crop)
        inputs = lambda idx: np.stack([transform.map(source[int(i)])["image"] for i in idx])  # noqa: E731
        label = lambda i: _first_label(source[int(i)])  # noqa: E731
    return units.ImageSet(
        batches=lambda: pipeline.eval_loader(source, batch_size=batch_size, transform=transform),
        inputs=inputs,
        display_mean=mean,
        label=label,
        class_names=tuple(names),
    )


def grandmother_units(filter_ap_CxF, class_names: Sequence[str], *, max_units: int = 8):
    """The best filter of each class by per-filter AP (the selectivity analysis's
    ``filter_ap`` [C, F]), strongest first, each filter once: (channels, captions)."""
    ap = np.nan_to_num(np.asarray(filter_ap_CxF, np.float64), nan=-1.0)  # NaN: class absent
    best = np.argmax(ap, axis=1)  # the first filter among tied APs
    order = np.argsort(-ap[np.arange(len(best)), best], kind="stable")
    channels, captions = [], []
    for c in order:
        if int(best[c]) not in channels and len(channels) < max_units:
            channels.append(int(best[c]))
            captions.append(f"#{best[c]} {class_names[c]} AP {ap[c, best[c]]:.2f}")
    return channels, captions


def grandmother_candidates(net, images: units.ImageSet, *, layer="conv5", max_units=8):
    """`grandmother_units` of a network on `images`: per-filter AP of `layer`'s sp-max
    responses (`jaxcnn.selectivity.grandmother.filter_ap`, VOC07 AP), as the selectivity analysis
    scores them. Returns (channels, captions)."""
    module, params = net
    scores, labels = [], []
    for batch in images.batches():
        keep = np.asarray(batch["mask"], bool)
        _, acts = units.forward(module, params, np.asarray(batch["image"]), layers=(layer,))
        acts = np.asarray(acts[layer])
        spmax = acts if acts.ndim == 2 else acts.max(axis=(1, 2))
        scores.append(spmax[keep])
        labels += [images.label(int(i)) for i in np.asarray(batch["index"])[keep]]
    ap = grandmother.filter_ap(
        np.concatenate(scores), np.asarray(labels, np.int32), len(images.class_names)
    )
    return grandmother_units(ap, images.class_names, max_units=max_units)


def top_grids(
    net, images, out_dir, tag, picks, *, captions=None, k=9, rule="deconv", lrn="vjp", dpi=100
):
    """Top-k grids of `picks` ({layer: channels}) for one network, one pass: {name: path}
    (files ``top<k>-<tag>-<layer>.png``)."""
    module, params = net
    tops = units.top_per_layer(module, params, images, layers=tuple(picks), k=k)
    out = {}
    for layer, channels in picks.items():
        res = units.unit_patches(module, params, images, tops[layer], layer=layer,
                                 channels=channels, rule=rule, lrn=lrn)  # fmt: skip
        labels = (captions or {}).get(layer) or [f"{layer} #{c}" for c in channels]
        name = f"top{k}-{tag}-{layer}"
        out[name] = plots.plot_top_patches(
            res, os.path.join(out_dir, name + ".png"), unit_labels=labels,
            title=f"{_title(tag)}: top {k} of {layer} units "
            f"({rule} projection | its footprint | patch)", dpi=dpi,
        )  # fmt: skip
    return out


def _title(tag: str) -> str:
    net, _, rest = tag.partition("-")
    return NAMES.get(net, net) + (f", {rest}" if rest else "")


def occlusion_figure(net, images, path, *, tag, count=3, dpi=100):
    """Fig. 7 for `count` images `net` classifies correctly (`pick_correct`); square side 1/4
    of the input, stride 1/32 (64 px: 16 and 2)."""
    size = net[0].config.input_size // 4
    stride = max(1, net[0].config.input_size // 32)
    rows = occlusion_rows(net, images, pick_correct(net, images, count), size=size, stride=stride)
    title = (
        f"{_title(tag)}: occlusion sensitivity (mean-coloured square {size} px, stride {stride})"
    )
    return plots.plot_occlusion(rows, path, title=title, dpi=dpi)


def pick_correct(net, images: units.ImageSet, count: int, *, scan: int = 512) -> list[int]:
    """The first `count` images (of the first `scan`) the network classifies correctly, at most
    one per class; topped up with the first other images if too few."""
    module, params = net
    chosen, classes, others = [], set(), []
    for batch in images.batches():
        idx = np.asarray(batch["index"])[np.asarray(batch["mask"], bool)]
        logits, _ = units.forward(module, params, np.asarray(batch["image"])[: len(idx)])
        for i, pred in zip(idx, np.argmax(np.asarray(logits), axis=1), strict=True):
            label = images.label(int(i))
            if pred == label and label not in classes:
                chosen.append(int(i))
                classes.add(label)
            else:
                others.append(int(i))
        if len(chosen) >= count or idx.max(initial=-1) + 1 >= scan:
            break
    return (chosen + others)[:count]


def occlusion_rows(net, images: units.ImageSet, indices, *, size, stride, layer="conv5"):
    """The rows of `plots.plot_occlusion` for the images `indices` of `images`."""
    module, params = net
    rows = []
    for i, img in zip(indices, images.inputs(np.asarray(indices)), strict=True):
        label = images.label(int(i))
        maps = occlusion.occlusion_maps(module, params, img, label=label, size=size,
                                        stride=stride, layer=layer)  # fmt: skip
        fmap = int(occlusion.strongest_feature_map(module, params, img, layer=layer))
        proj = projection.project(module, params, img[None], layer=layer, channel=fmap)
        rows.append({
            "image": images.display(img[None])[0], "maps": maps, "size": size, "stride": stride,
            "label_name": images.class_names[label], "class_names": images.class_names,
            "feature_map": fmap, "projection": np.asarray(proj[0]),
        })  # fmt: skip
    return rows


def evolution_figures(run_dir, images, out_dir, *, layer="conv5", count=6, steps=None, seed=0):
    """Fig. 4: `count` random live units of `layer` (live at the last snapshot) over the run's
    snapshots, and the conv-1 filters of each snapshot: {name: path}."""
    steps = steps or checkpoints.available_steps(run_dir)
    module = model.module_from_run(run_dir, steps[-1])
    snaps = {s: checkpoints.restore_params(run_dir, s) for s in steps}
    last = units.top_per_layer(module, snaps[steps[-1]], images, layers=(layer,), k=1)[layer]
    channels = units.random_units(last, count, seed=seed)
    evo = units.feature_evolution(module, snaps, images, layer=layer, channels=channels)
    grids = {
        f"iter {s}": analysis_plots.conv1_filter_grid(np.asarray(p["conv1"]["kernel"]))
        for s, p in snaps.items()
    }
    return {
        f"evolution-{layer}": plots.plot_evolution(
            evo, os.path.join(out_dir, f"evolution-{layer}.png"), layer=layer
        ),
        "conv1-snapshots": analysis_plots.plot_filter_grids(
            grids, os.path.join(out_dir, "conv1-snapshots.png")
        ),
    }


def report_figures(
    out_dir: str,
    *,
    pre_run: str,
    ft_run: str | None,
    images: FeatureSet,
    source_images: FeatureSet | None = None,
    units_by_layer: Mapping[str, Sequence[int]] | None = None,
    captions: Mapping[str, Sequence[str]] | None = None,
    num_random: int = 8,
    occlusion_count: int = 3,
    seed: int = 0,
) -> dict[str, str]:
    """All visualisation figures of a run or a pre-trained / fine-tuned pair: {name: PNG path}.

    Args:
      pre_run, ft_run: run folders (latest checkpoints); `ft_run` None: one network.
      images: the split the units are shown on (top-9 grids of both networks; occlusion of the
        fine-tuned network, whose classes these are). The study: the det target's GT boxes.
      source_images: the pre-training split (occlusion of the pre-trained network and feature
        evolution); None: `images` (then the pre-trained network's classes must be theirs).
      units_by_layer, captions: chosen units per layer with their captions (e.g. the conv-5
        grandmother-cell candidates from `grandmother_units`), shown for both networks.
      num_random: random live units per conv layer (chosen on the pre-trained network, the same
        channels shown for the fine-tuned one, which started from it).
    """
    target = image_set(images)
    source = image_set(source_images) if source_images is not None else None
    nets = {"pre": load_network(pre_run)}
    if ft_run is not None:
        nets["ft"] = load_network(ft_run)
    module, params = nets["pre"]
    tops = units.top_per_layer(module, params, target, layers=CONV_LAYERS, k=9)
    picks = {layer: units.random_units(tops[layer], num_random, seed=seed) for layer in CONV_LAYERS}
    out = {}
    for tag, net in nets.items():
        out.update(top_grids(net, target, out_dir, tag, picks))
        if units_by_layer:
            chosen = {layer: list(ch) for layer, ch in units_by_layer.items()}
            out.update(top_grids(net, target, out_dir, f"{tag}-chosen", chosen, captions=captions))
    for tag, net in nets.items():
        split = target if tag == "ft" else (source or target)  # the network's own classes
        path = os.path.join(out_dir, f"occlusion-{tag}.png")
        out[f"occlusion-{tag}"] = occlusion_figure(net, split, path, tag=tag, count=occlusion_count)
    out.update(evolution_figures(pre_run, source or target, out_dir, seed=seed))
    return out
