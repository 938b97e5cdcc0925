"""Preparing and reading real datasets never imports TensorFlow (checked in a subprocess)."""

import os
import subprocess
import sys
import textwrap

# A meta-path finder in front of all others: a real `import tensorflow` (or of a submodule)
# raises ImportError and is recorded; availability probes (importlib.util.find_spec, as etils
# and TFDS make them) fall through to the normal finders, so they see what is installed.
SCRIPT = textwrap.dedent(
    """
    import importlib.util, sys, tempfile, traceback
    imports = []

    class BlockTensorFlow:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] != "tensorflow":
                return None
            frame = sys._getframe(1)
            while frame is not None:
                if frame.f_code is importlib.util.find_spec.__code__:
                    return None  # a probe: let the other finders answer
                frame = frame.f_back
            imports.append("".join(traceback.format_stack(limit=12)))
            raise ImportError(f"jaxcnn must not import {name}")

    sys.meta_path.insert(0, BlockTensorFlow())
    import numpy as np
    from absl import flags
    flags.FLAGS.mark_as_parsed()
    from jaxcnn.data import pipeline, sources
    from jaxcnn.data.archives import prepare_dataset
    from tests.data.archives import imagenet_test, sun397_test, voc_test
    from tests.data.archives.originals import write_tar, write_files

    root = tempfile.mkdtemp()
    voc_test._voc2007_tars(root)
    imagenet_test._tars(root)
    write_files(root, {"validation_labels.txt": "".join(
        w + "\\n" for w, _ in imagenet_test.VAL.values())})
    write_tar(root + "/SUN397.tar.gz", sun397_test._files(), mode="w:gz")
    data_dir = root + "/data"
    for name in ("voc2007", "imagenet2012", "sun397"):
        prepare_dataset(name, manual_dir=root, data_dir=data_dir)
    for name, split in [("voc2007", "test"), ("imagenet2012", "train"), ("sun397", "train")]:
        report = sources.scan(sources.open_split(name, split, data_dir=data_dir))
        assert report.good.size > 0, (name, report.summary())
    source = sources.open_split("voc2007", "test", data_dir=data_dir)
    transform = pipeline.EvalTransform(np.zeros((32, 32, 3), np.float32), crop=28)
    batch = next(iter(pipeline.eval_loader(
        source, batch_size=2, transform=transform, shard_index=0, shard_count=1)))
    assert batch["image"].shape == (2, 28, 28, 3)
    print("IMPORTS", len(imports), "IN_MODULES", "tensorflow" in sys.modules)
    for stack in imports[:2]:
        print(stack)
    """
)


def test_prepare_and_read_never_import_tensorflow():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    env = {**os.environ, "PYTHONPATH": root, "JAX_PLATFORMS": "cpu"}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=root, env=env, capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "IMPORTS 0 IN_MODULES False" in result.stdout, result.stdout[-3000:]
