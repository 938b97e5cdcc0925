"""ImageNet (ILSVRC-2012) validation labels: the accepted formats, found in `manual_dir`.

Looked for in this order; the first found is used (and recorded in the dataset's metadata):

1. `LOC_val_solution.csv` (Kaggle's ImageNet Object Localization Challenge): a header
   `ImageId,PredictionString`, then `ILSVRC2012_val_00008726,n02119789 255 142 454 329 ...`;
   the first synset of each row is the image's label.
2. The ILSVRC-2012 devkit, `ILSVRC2012_devkit_t12.tar.gz`, its extracted
   `ILSVRC2012_devkit_t12/`, or its two files placed directly in `manual_dir`:
   `data/ILSVRC2012_validation_ground_truth.txt` (line i: the ILSVRC2012_ID, 1-1000, of
   `ILSVRC2012_val_<i, 8 digits>.JPEG`) and `data/meta.mat` (the synsets table mapping
   ILSVRC2012_ID to WNID; the devkit's ID order is not the sorted synset order, so the ground
   truth alone is not enough). meta.mat is read with scipy.io.loadmat.
3. `validation_labels.txt`: one synset per line for the validation images in sorted file-name
   order (TFDS's format).
4. None of these: TFDS's own copy of (3), shipped in tensorflow_datasets
   (datasets/imagenet2012/validation_labels.txt, the 50,000 official labels); used only when
   the validation images are exactly ILSVRC2012_val_00000001..00050000.JPEG.

Images in class subdirectories (`val/n01440764/...`, as `valprep.sh` arranges them) take the
label of their directory and need none of these.
"""

from __future__ import annotations

import csv
import io
import os
import tarfile

import tensorflow_datasets as tfds

DEVKIT = "ILSVRC2012_devkit_t12"
GROUND_TRUTH = "ILSVRC2012_validation_ground_truth.txt"


def _val_name(i: int) -> str:
    return f"ILSVRC2012_val_{i:08d}.JPEG"


def _from_csv(path: str) -> dict[str, str]:
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows or rows[0][:2] != ["ImageId", "PredictionString"]:
        raise ValueError(f"{path}: expected the header 'ImageId,PredictionString'")
    return {f"{row[0]}.JPEG": row[1].split()[0] for row in rows[1:] if row}


def _devkit_files(manual_dir: str) -> tuple[bytes, bytes, str] | None:
    """(ground truth bytes, meta.mat bytes, where) from the devkit in any accepted form."""
    tar = os.path.join(manual_dir, f"{DEVKIT}.tar.gz")
    if os.path.exists(tar):
        wanted = {f"{DEVKIT}/data/{GROUND_TRUTH}": None, f"{DEVKIT}/data/meta.mat": None}
        with tarfile.open(tar) as t:
            for name in wanted:
                try:
                    wanted[name] = t.extractfile(name).read()
                except KeyError as e:
                    raise FileNotFoundError(f"{tar} has no {name}") from e
        truth, meta = wanted.values()
        return truth, meta, tar
    for data_dir in (os.path.join(manual_dir, DEVKIT, "data"), manual_dir):
        truth, meta = os.path.join(data_dir, GROUND_TRUTH), os.path.join(data_dir, "meta.mat")
        if os.path.exists(truth) and os.path.exists(meta):
            with open(truth, "rb") as f, open(meta, "rb") as g:
                return f.read(), g.read(), data_dir
        if os.path.exists(truth):
            raise FileNotFoundError(
                f"{truth} gives ILSVRC2012_IDs, which need the devkit's meta.mat to become "
                f"synsets: place meta.mat at {meta}"
            )
    return None


def _from_devkit(truth: bytes, meta: bytes, where: str) -> dict[str, str]:
    from scipy import io as sio  # only this format needs scipy (a dependency of scikit-learn)

    synsets = sio.loadmat(io.BytesIO(meta), squeeze_me=True)["synsets"]
    wnid = {int(s["ILSVRC2012_ID"]): str(s["WNID"]) for s in synsets}
    ids = [int(line) for line in truth.decode().split()]
    missing = sorted(set(ids) - set(wnid))
    if missing:
        raise ValueError(f"{where}: ground-truth IDs {missing[:5]} are not in meta.mat")
    return {_val_name(i + 1): wnid[k] for i, k in enumerate(ids)}


def _from_lines(text: str, names: list[str], where: str) -> dict[str, str]:
    labels = text.split()
    if len(labels) != len(names):
        raise ValueError(
            f"{where} has {len(labels)} labels for {len(names)} validation images (one synset "
            "per line, for the images in sorted file-name order)"
        )
    return dict(zip(sorted(names), labels, strict=True))


def validation_labels(manual_dir, names: list[str]) -> tuple[dict[str, str], str]:
    """({validation file name: synset}, where the labels came from) (module doc)."""
    manual_dir = os.fspath(manual_dir)
    csv_path = os.path.join(manual_dir, "LOC_val_solution.csv")
    if os.path.exists(csv_path):
        return _from_csv(csv_path), csv_path
    devkit = _devkit_files(manual_dir)
    if devkit is not None:
        return _from_devkit(*devkit), devkit[2]
    lines = os.path.join(manual_dir, "validation_labels.txt")
    if os.path.exists(lines):
        with open(lines) as f:
            return _from_lines(f.read(), names, lines), lines
    if sorted(names) != [_val_name(i) for i in range(1, 50_001)]:
        raise FileNotFoundError(
            f"no validation labels in {manual_dir}: place LOC_val_solution.csv, "
            f"{DEVKIT}.tar.gz (or its data/{GROUND_TRUTH} and data/meta.mat) or "
            "validation_labels.txt there (module jaxcnn.data.archives.imagenet_labels); TFDS's "
            "own labels fit only the 50,000 official validation images"
        )
    shipped = tfds.core.tfds_path(os.path.join("datasets", "imagenet2012", "validation_labels.txt"))
    return _from_lines(shipped.read_text(), names, str(shipped)), f"{shipped} (shipped by TFDS)"
