"""Preparation throughput from archives: images/s per process, and scaling with processes.

Builds a VOC 2007 look-alike (VOCtrainval / VOCtest tars, `--num_images` JPEGs of 500 x 375
pixels at quality 90, ~VOC's file size, with one-object XML annotations) and times:

1. per image, in this process: the image rule of each dataset (`images.keep_jpeg` = VOC /
   ImageNet as stored, `shrink_shorter_side(256)` = ImageNet --resize=256,
   `limit_pixels(120000)` = SUN397) and VOC's whole `encode` + TFDS serialisation;
2. the whole preparation (`writer.prepare`: read from the tars, encode, write shards) with
   1, 2, 4, ... worker processes (each run in a fresh data_dir): images/s between the first
   and the last finished shard (the workers running), over the whole wall time, and the time
   to the first finished shard (mostly the start of the 'spawn' workers, which import TFDS).

Prints images/s, images/s per process, and the load average before and after (other jobs on
the machine slow every figure down; read them with it).

    python benchmarks/prepare.py --num_images=512 --workers=1,2
"""

import dataclasses
import io
import os
import statistics
import tarfile
import tempfile
import time

import numpy as np
from absl import app, flags
from PIL import Image

from jaxcnn.data.archives import images, registry, voc, writer

FLAGS = flags.FLAGS
flags.DEFINE_integer("num_images", 512, "JPEGs in the fake VOC (half train, quarter val/test).")
flags.DEFINE_list("workers", ["1", "2"], "Worker process counts for the whole preparation.")
flags.DEFINE_integer("shard_size", 16, "Examples per shard (enough shards for every worker).")
flags.DEFINE_integer("repeats", 3, "Timing repeats of the per-image rules (median).")
flags.DEFINE_string("work_dir", None, "Where the archives and outputs go (default: a temp dir).")

ANNOTATION = (
    b"<annotation><size><width>500</width><height>375</height></size><object><name>dog"
    b"</name><pose>Left</pose><truncated>0</truncated><difficult>0</difficult><bndbox>"
    b"<xmin>48</xmin><ymin>40</ymin><xmax>300</xmax><ymax>371</ymax></bndbox></object>"
    b"</annotation>"
)


def _photo_like(rng: np.random.Generator) -> bytes:
    """500 x 375 RGB JPEG (quality 90) with smooth shapes plus texture: ~VOC's bytes/image."""
    coarse = rng.uniform(0, 255, (12, 16, 3)).astype(np.uint8)
    base = np.asarray(Image.fromarray(coarse).resize((500, 375), Image.Resampling.BICUBIC))
    texture = rng.normal(0, 12, base.shape)
    pixels = np.clip(base + texture, 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="JPEG", quality=90)
    return out.getvalue()


def _fake_voc(directory: str, n: int) -> list[bytes]:
    rng = np.random.default_rng(0)
    jpegs = [_photo_like(rng) for _ in range(min(n, 64))]  # 64 distinct, reused
    ids = [f"{i:06d}" for i in range(n)]
    sets = {"train": ids[: n // 2], "val": ids[n // 2 : 3 * n // 4], "test": ids[3 * n // 4 :]}
    base = "VOCdevkit/VOC2007"
    tars = {"VOCtrainval_06-Nov-2007.tar": ("train", "val"), "VOCtest_06-Nov-2007.tar": ("test",)}
    for tar_name, parts in tars.items():
        with tarfile.open(os.path.join(directory, tar_name), "w") as tar:
            files = {
                f"{base}/ImageSets/Main/{p}.txt": "".join(f"{i}\n" for i in sets[p]).encode()
                for p in parts
            }
            for p in parts:
                for i in sets[p]:
                    files[f"{base}/Annotations/{i}.xml"] = ANNOTATION
                    files[f"{base}/JPEGImages/{i}.jpg"] = jpegs[int(i) % len(jpegs)]
            for name, data in files.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return jpegs


def _per_image(jpegs: list[bytes]) -> dict[str, float]:
    """Median images/s of each rule over `repeats` passes, in this process."""
    example = writer.Example("000000", (), ("Annotations/000000.xml",))
    features, serializer = writer._features("voc/2007", tempfile.gettempdir())

    def voc_record(data):
        tfds_example, _ = voc.encode(example, [ANNOTATION, data], {})
        encoded = features.encode_example(tfds_example)
        return serializer.get_tf_example(encoded).SerializeToString(deterministic=True)

    rules = {
        "keep_jpeg (VOC, ImageNet as stored)": images.keep_jpeg,
        "shrink_shorter_side 256 (ImageNet --resize=256)": lambda d: images.shrink_shorter_side(
            d, 256
        ),
        "limit_pixels 120000 (SUN397)": lambda d: images.limit_pixels(d, 120_000),
        "full decode (PIL, for reference)": lambda d: Image.open(io.BytesIO(d)).load(),
        "VOC encode + TFDS serialisation": voc_record,
    }
    out = {}
    for name, fn in rules.items():
        rates = []
        for _ in range(FLAGS.repeats):
            start = time.perf_counter()
            for data in jpegs:
                fn(data)
            rates.append(len(jpegs) / (time.perf_counter() - start))
        out[name] = statistics.median(rates)
    return out


def _whole(directory: str, workers: int) -> tuple[float, float, float]:
    """(images/s over the wall time, images/s once the workers run, seconds to the first
    finished shard) of one preparation with `workers` processes."""
    job = registry.plan("voc2007", manual_dir=directory)
    job = dataclasses.replace(job, shard_size=FLAGS.shard_size)
    data_dir = tempfile.mkdtemp(dir=directory)
    marks = []
    start = time.perf_counter()
    summary = writer.prepare(
        job, data_dir=data_dir, num_workers=workers,
        progress=lambda p: marks.append((time.perf_counter(), p.done)),
    )  # fmt: skip
    seconds = time.perf_counter() - start
    assert sum(summary.counts.values()) == FLAGS.num_images
    (t0, n0), (t1, n1) = marks[0], marks[-1]
    return FLAGS.num_images / seconds, (n1 - n0) / max(t1 - t0, 1e-9), t0 - start


def main(argv):
    del argv
    directory = FLAGS.work_dir or tempfile.mkdtemp(prefix="jaxcnn-prepare-bench-")
    os.makedirs(directory, exist_ok=True)
    print(f"load average before: {os.getloadavg()}, {os.cpu_count()} cores")
    jpegs = _fake_voc(directory, FLAGS.num_images)
    size = statistics.mean(len(j) for j in jpegs) / 1024
    print(f"{FLAGS.num_images} JPEGs of 500 x 375, {size:.0f} KiB on average, in {directory}")
    print("per image, one process (median of repeats):")
    for name, rate in _per_image(jpegs).items():
        print(f"  {name:50s} {rate:8.1f} images/s  ({1000 / rate:.2f} ms/image)")
    print("whole VOC preparation from the tars (read, encode, write shards):")
    for workers in (int(w) for w in FLAGS.workers):
        wall, steady, first = _whole(directory, workers)
        print(
            f"  {workers:2d} processes: {steady:7.1f} images/s once running "
            f"({steady / workers:6.1f} per process); {wall:7.1f} images/s over the wall time, "
            f"{first:4.1f} s to the first shard (worker start-up)"
        )
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    app.run(main)
