"""Datasets, preprocessing and the input pipeline (batches stay on the host;
`jaxcnn.train.devices` places them on devices).

Modules (import them directly; this package imports nothing heavy itself):

- `sources`: `open_split(name, split, *, data_dir, seed)` -> `Source`, a random-access
  source of normalised numpy records over TFDS array_record files (imagenet2012, voc2007,
  voc2012, voc2007+2012, sun397 and toyworld/{source,scenes,places}); `seeded_split` (the
  per-class 50/10/40 SUN protocol); `pool_labels`; `scan` (counts repairs and bad examples
  of a split, returns the good indices for `Source.subset`).
- `records`: the normalised record formats, validation and the bad-input rules
  (`BadExampleError`).
- `preprocess`: Caffe-style resize / random crop + mirror / centre crop with mean
  subtraction (RGB), `Mean` and its storage next to the dataset.
- `pipeline`: grain loaders. `train_loader` (shuffled, infinite, per-host shard, resumable
  state), `eval_loader` (ordered, padded, masked), `get_mean` / `dataset_mean`.
- `boxes`: R-CNN box warping with context padding (`warp_box`) and `GtBoxSource`, the
  PASCAL-DET-GT crops as a source of `{'image', 'label', 'difficult', 'image_index',
  'object_index'}`.
- `toyworld`, `toyworld_world`, `toyworld_draw`: the embedded default dataset (TFDS builder,
  class tables and samplers, vectorised drawing). See docs/toyworld.md.
- `prepare`: preparing toyworld and the real datasets on disk; `grids`: example grids.
- `archives` (a package): the real datasets from their original archives or extracted trees,
  into TFDS's array_record layout without TensorFlow.
- `integrity`: checksums of a prepared dataset (`record`, `verify`, `set_aside_if_damaged`);
  `open_split` checks sizes, re-preparation checks every byte.
"""

# The public modules (imported on use, so that importing the package stays light).
__all__ = [
    "archives",
    "boxes",
    "grids",
    "integrity",
    "pipeline",
    "prepare",
    "preprocess",
    "records",
    "sources",
    "toyworld",
    "toyworld_draw",
    "toyworld_world",
]
