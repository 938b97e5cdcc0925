"""The network: CaffeNet (Caffe's AlexNet) in flax.linen, its presets and geometry, and the
rebuilding of a run's network from its checkpoint metadata (docs/methods.md §1)."""

from jaxcnn.model.alexnet import (
    CONV_NAMES,
    FC_NAMES,
    PRESETS,
    TAP_NAMES,
    AlexNet,
    AlexNetConfig,
    caffenet,
    caffenet_config,
    count_params,
    forward_flops,
    from_preset,
    init_params,
    small_config,
)
from jaxcnn.model.meta import (
    INITS,
    NetworkSpec,
    equal_layers,
    module_from_meta,
    module_from_run,
)

__all__ = [
    "AlexNet",
    "AlexNetConfig",
    "CONV_NAMES",
    "FC_NAMES",
    "INITS",
    "NetworkSpec",
    "PRESETS",
    "TAP_NAMES",
    "caffenet",
    "caffenet_config",
    "count_params",
    "equal_layers",
    "forward_flops",
    "from_preset",
    "init_params",
    "module_from_meta",
    "module_from_run",
    "small_config",
]
