"""benchmarks/accelerator.py at its tiny size, on 2 fake CPU devices, through every section:
it runs, every figure it reports is there and positive, and the alternative layer forms compute
what the library's forms compute."""

import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def tiny_toyworld(tmp_path_factory):
    from absl import flags

    from jaxcnn.data import prepare

    if not flags.FLAGS.is_parsed():  # grain reads absl flags
        flags.FLAGS.mark_as_parsed()
    data_dir = tmp_path_factory.mktemp("tfds")
    prepare.prepare_toyworld(size="tiny", data_dir=str(data_dir), num_workers=1)
    return str(data_dir)


def test_accelerator_benchmark_tiny(tmp_path, tiny_toyworld):
    out = tmp_path / "figures.json"
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
    env["PYTHONPATH"] = os.pathsep.join([REPO, env.get("PYTHONPATH", "")])
    result = subprocess.run(
        [
            sys.executable,
            os.path.join(REPO, "benchmarks", "accelerator.py"),
            "--tiny",
            f"--e2e_data_dir={tiny_toyworld}",
            f"--out={out}",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    figures = json.loads(out.read_text())
    assert figures["platform"] == "cpu" and figures["devices"] == 2
    for dtype in ("float32", "bfloat16"):
        step = figures["step"][dtype]
        assert step["img_per_s"] > 0 and step["tflops"] > 0 and step["peak_tflops"] > 0
        assert step["mem_bytes"] > 0
    assert figures["forms"]["grouped_split"] > 0
    assert figures["forms"]["grouped_feature_group_count"] > 0
    layers = figures["forms"]["layers"]
    forms = {"pool": ("slices", "reduce_window"), "lrn": ("reduce_window", "matmul")}
    expected = {
        (f"{kind}{i}", form) for kind, names in forms.items() for i in (1, 2) for form in names
    }
    assert {(r["layer"], r["form"]) for r in layers} == expected
    assert all(r["max_abs_diff"] < 1e-4 and r["ms"] > 0 for r in layers), layers
    assert set(figures["scaling"]) == {"1", "2"} and min(figures["scaling"].values()) > 0
    assert set(figures["modes"]) == {"pmap", "jit"} and min(figures["modes"].values()) > 0
    decoders = {r["decoder"] for r in figures["pipeline"]}
    assert {"pillow", "pillow+uint8", "pillow-draft", "pillow-draft+uint8"} <= decoders
    assert all(r["img_per_s"] > 0 for r in figures["pipeline"])
    assert figures["e2e"]["img_per_s"] > 0 and figures["e2e"]["dataset"] == "toyworld/source_tiny"
    assert len(figures["cores_per_device"]) == 8
    assert result.stdout.count("projection") == 4, result.stdout
