"""How runs describe their network: `NetworkSpec` (the settings a run or the study states, from
which flags are generated) and rebuilding a run's network from what its checkpoint records
(`model_meta` in `jaxcnn.train.config` writes it: preset, classes, overrides, compute dtype)."""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxcnn.model import alexnet
from jaxcnn.storage import checkpoints


def module_from_meta(model: dict) -> alexnet.AlexNet:
    """The module described by `model_meta`; one instance per description and process (a
    state's ``apply_fn`` is the bound ``module.apply``, which compares by module identity, so
    sharing instances lets runs in one process share compiled steps)."""
    overrides = tuple(sorted(model.get("overrides", {}).items()))
    return _module(
        model["preset"], model["num_classes"], overrides, model.get("compute_dtype", "float32")
    )


@functools.cache
def _module(preset: str, num_classes: int, overrides: tuple, compute_dtype: str):
    dtype = jnp.bfloat16 if compute_dtype == "bfloat16" else jnp.float32
    return alexnet.from_preset(preset, num_classes, dtype=dtype, **dict(overrides))


def module_from_run(run_dir: str, step: int | None = None) -> alexnet.AlexNet:
    """The network of a run (training or imported weights), from its checkpoint's metadata."""
    return module_from_meta(checkpoints.restore_meta(run_dir, step)["model"])


INITS = ("caffe", "msra")


def _choice(default, choices, help_text):
    return dataclasses.field(default=default, metadata={"choices": choices, "help": help_text})


@dataclasses.dataclass(frozen=True)
class NetworkSpec:
    """The network's settings as a run or the study states them (flags are generated from it).

    `width`, `fc_width` and `init` apply to the small preset only; CaffeNet's geometry is fixed.
    The defaults are `small_config`'s."""

    preset: str = _choice("small", tuple(alexnet.PRESETS), "Network geometry preset.")
    width: float = dataclasses.field(
        default=0.25, metadata={"help": "small preset: conv width multiplier."}
    )
    fc_width: int = dataclasses.field(
        default=512, metadata={"help": "small preset: fc6/fc7 width."}
    )
    init: str = _choice(
        "msra", INITS, "small preset: MSRA stds with input scale 1/64, or CaffeNet's Gaussians."
    )
    bias_one: float = dataclasses.field(
        default=0.1,
        metadata={"help": "Bias of conv2/4/5 and fc6/7 (CaffeNet 1, BVLC AlexNet 0.1)."},
    )

    def __post_init__(self):
        if self.preset not in alexnet.PRESETS:
            raise ValueError(f"preset must be one of {tuple(alexnet.PRESETS)}, got {self.preset!r}")
        if self.init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {self.init!r}")
        if self.width <= 0 or self.fc_width < 1:
            raise ValueError(f"need width > 0 and fc_width >= 1, got {self.width}, {self.fc_width}")

    def check(self, crop: int) -> None:
        """Raise ValueError if the network cannot be built for `crop`-pixel inputs (too small an
        input, too narrow a width, CaffeNet at another size)."""
        alexnet.PRESETS[self.preset](2, **self.overrides(crop))

    def overrides(self, crop: int) -> dict:
        """Keyword overrides of the preset's config function for inputs of `crop` pixels."""
        if self.preset == "caffenet":
            if crop != 227:
                raise ValueError(f"caffenet takes 227-pixel inputs, got crop {crop}")
            return {"bias_one": self.bias_one}
        return {
            "width": self.width,
            "fc_width": self.fc_width,
            "input_size": crop,
            "init": self.init,
            "bias_one": self.bias_one,
        }


def equal_layers(params_a, params_b, layers) -> bool:
    """Whether two parameter trees hold equal arrays (bit for bit, same structure) in each of
    `layers` (e.g. fc-ft's frozen conv1-5 against its source network's)."""

    def same(a, b) -> bool:
        return jax.tree.structure(a) == jax.tree.structure(b) and all(
            map(np.array_equal, jax.tree.leaves(a), jax.tree.leaves(b))
        )

    return all(same(params_a[name], params_b[name]) for name in layers)
