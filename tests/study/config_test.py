"""StudyConfig validates every number before any stage runs, each error naming its flag."""

import pytest

from jaxcnn import model, study


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"crop": 0}, "--crop must be >= 1"),
        ({"crop": 80}, r"--resize \(72\) must be >= --crop \(80\)"),
        ({"crop": 16, "resize": 20}, "use --crop >= 19"),
        ({"network": model.NetworkSpec(width=0.001)}, "use --width > 0.0104"),
        ({"pretrain_steps": 0}, "--pretrain_steps must be >= 1"),
        ({"scratch_steps": 0}, "--scratch_steps must be >= 1"),
        ({"probe_test_images": -1}, "--probe_test_images must be >= 0"),
        ({"snapshots": (20, 5000)}, r"--snapshots \[5000\] lie outside"),
        ({"table4_snapshots": (100,)}, r"--table4_snapshots \[100\] are not kept"),
        ({"protocol": "vocc07"}, "protocol must be one of"),
    ],
)
def test_bad_settings_are_named(changes, message):
    with pytest.raises(ValueError, match=message):
        study.StudyConfig(**changes)


def test_zero_width_is_refused_by_the_network_spec():
    with pytest.raises(ValueError, match="width > 0"):
        model.NetworkSpec(width=0.0)


def test_defaults_and_the_final_step_as_a_table4_snapshot_are_fine():
    study.StudyConfig()
    study.StudyConfig(snapshots=(10,), table4_snapshots=(1200,))
