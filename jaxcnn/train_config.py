"""What a training run is: `TrainConfig`, its network, optimizer and starting state.

A run is described by one frozen `TrainConfig` (SPEC §2: Caffe's solver fields, the network
preset and geometry, the regime and its source run, the snapshot schedule). From it follow:

- the network (`TrainConfig.module`, also rebuilt from a checkpoint with `module_from_run`);
- Caffe's SGD over the trainable layers (`TrainConfig.optimizer`);
- the step-0 `TrainState` (`initial_state`), initialised per regime (`jaxcnn.finetune`).

Equal configs yield the *same* module and optimizer objects within a process: a state's
``apply_fn`` and ``tx`` are static parts of its pytree, so sharing them lets several runs in one
process (a study's fine-tunings) reuse one compiled training step.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import optax

from jaxcnn import checkpoints, finetune, models, optim
from jaxcnn import train as train_lib

# Settings a resumed run may change (run length and reporting); all others must match.
RESUMABLE_CHANGES = (
    "num_steps",
    "log_every",
    "eval_every",
    "checkpoint_every",
    "snapshot_steps",
    "eval_batch_size",
)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """One training run. Solver fields follow Caffe's solver.prototxt (SPEC §2)."""

    num_classes: int
    num_steps: int
    batch_size: int  # global, over all processes and devices
    preset: str = "small"
    model_overrides: dict = dataclasses.field(default_factory=dict)  # e.g. {"width": 0.25}
    compute_dtype: str = "float32"  # or "bfloat16" (parameters and optimizer stay float32)
    regime: str = "pretrain"  # one of finetune.REGIMES
    init_from: str = ""  # run directory of the source network (ft, fc-ft)
    init_step: int = -1  # its checkpoint step; -1: the latest
    base_lr: float = 0.01
    lr_gamma: float = 0.1
    lr_step_size: int = 100_000
    momentum: float = 0.9
    weight_decay: float = 5e-4
    bias_lr_mult: float = 2.0
    bias_decay_mult: float = 0.0
    seed: int = 0
    snapshot_steps: tuple[int, ...] = ()
    checkpoint_every: int = 1000
    log_every: int = 50
    eval_every: int = 0  # 0: validate only at the end
    eval_batch_size: int = 0  # per process; 0: the per-process training batch
    num_local_devices: int = 0  # 0: all local devices

    def __post_init__(self):
        if self.regime not in finetune.REGIMES:
            raise ValueError(f"regime must be one of {finetune.REGIMES}, got {self.regime!r}")
        if (self.regime in finetune.NEEDS_SOURCE) != bool(self.init_from):
            raise ValueError(
                f"init_from is required for {finetune.NEEDS_SOURCE} and only for "
                f"them (regime {self.regime!r}, init_from {self.init_from!r})"
            )
        if self.compute_dtype not in ("float32", "bfloat16"):
            raise ValueError(
                f"compute_dtype must be float32 or bfloat16, got {self.compute_dtype!r}"
            )
        if self.num_steps < 0 or self.log_every < 1 or self.checkpoint_every < 1:
            raise ValueError("need num_steps >= 0, log_every >= 1 and checkpoint_every >= 1")
        object.__setattr__(self, "snapshot_steps", tuple(int(s) for s in self.snapshot_steps))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        d = dict(d)
        d["snapshot_steps"] = tuple(d.get("snapshot_steps", ()))
        return cls(**d)

    def module(self) -> models.AlexNet:
        return module_from_meta(model_meta(self))

    def learning_rate(self) -> optim.Schedule:
        return optim.step_schedule(self.base_lr, gamma=self.lr_gamma, step_size=self.lr_step_size)

    def optimizer(self, params: dict, trainable) -> optax.GradientTransformation:
        """Caffe's SGD over the trainable layers (cached: equal configs share one object, so
        that states of runs in one process share compiled steps)."""
        treedef = jax.tree_util.tree_structure({k: params[k] for k in trainable})
        return _caffe_optimizer(
            treedef,
            self.base_lr,
            self.lr_gamma,
            self.lr_step_size,
            self.momentum,
            self.weight_decay,
            self.bias_lr_mult,
            self.bias_decay_mult,
        )


@functools.cache
def _caffe_optimizer(
    treedef, base_lr, gamma, step_size, momentum, weight_decay, bias_lr_mult, bias_decay_mult
):
    skeleton = jax.tree_util.tree_unflatten(treedef, [0.0] * treedef.num_leaves)
    lr_mult, decay_mult = optim.caffe_multipliers(
        skeleton, bias_lr_mult=bias_lr_mult, bias_decay_mult=bias_decay_mult
    )
    schedule = optim.step_schedule(base_lr, gamma=gamma, step_size=step_size)
    return optim.caffe_sgd(
        schedule,
        momentum=momentum,
        weight_decay=weight_decay,
        lr_mult=lr_mult,
        decay_mult=decay_mult,
    )


def model_meta(config: TrainConfig) -> dict:
    """What a checkpoint records about its network: enough to rebuild the module."""
    return {
        "preset": config.preset,
        "num_classes": config.num_classes,
        "overrides": dict(config.model_overrides),
        "compute_dtype": config.compute_dtype,
    }


def module_from_meta(model: dict) -> models.AlexNet:
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
    return models.from_preset(preset, num_classes, dtype=dtype, **dict(overrides))


def module_from_run(run_dir: str, step: int | None = None) -> models.AlexNet:
    """The network of a run (training or imported weights), from its checkpoint's metadata."""
    return module_from_meta(checkpoints.restore_meta(run_dir, step)["model"])


def initial_state(config: TrainConfig) -> train_lib.TrainState:
    """Step-0 state of a run: initialisation per regime (`jaxcnn.finetune`) and the optimizer."""
    module = config.module()
    init_rng, dropout_rng = jax.random.split(jax.random.PRNGKey(config.seed))
    source = None
    if config.regime in finetune.NEEDS_SOURCE:
        step = None if config.init_step < 0 else config.init_step
        source = checkpoints.restore_params(config.init_from, step)
    params, trainable = finetune.start_params(config.regime, module, init_rng, source)
    params = jax.tree_util.tree_map(lambda x: jnp.asarray(x, jnp.float32), params)
    return train_lib.TrainState.create_for(
        apply_fn=module.apply,
        params=params,
        tx=config.optimizer(params, trainable),
        rng=dropout_rng,
        trainable=trainable,
    )
