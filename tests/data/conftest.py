"""Shared fixtures of the data tests: the tiny toyworld, prepared once per session."""

import pytest
from absl import flags

from jaxcnn.data import prepare


@pytest.fixture(scope="session", autouse=True)
def _absl_flags_parsed():
    # grain reads absl flags; under pytest nobody parses them.
    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    """A data_dir holding toyworld/{source,scenes,places}_tiny (in-process, ~3 s)."""
    data_dir = tmp_path_factory.mktemp("tfds")
    prepare.prepare_toyworld(size="tiny", seed=0, data_dir=str(data_dir), num_workers=1)
    return str(data_dir)
