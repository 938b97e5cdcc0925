"""Test configuration: 8 fake CPU devices for the multi-device tests.

XLA_FLAGS must be set before JAX is imported anywhere, so it happens here.
"""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402

# Silent broadcasting between arrays of different rank is an error in tests.
jax.config.update("jax_numpy_rank_promotion", "raise")
