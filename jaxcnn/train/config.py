"""What a training run is: `TrainConfig`, its network, optimizer and starting state.

A run is described by one frozen `TrainConfig` (docs/methods.md §2: Caffe's solver fields, the
network preset and geometry, the regime and its source run, the snapshot schedule). From it follow:

- the network (`TrainConfig.module`, also rebuilt from a checkpoint with `module_from_run`);
- Caffe's SGD over the trainable layers (`TrainConfig.optimizer`);
- the step-0 `TrainState` (`initial_state`), initialised per regime (`jaxcnn.train.regimes`).

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

from jaxcnn.model import alexnet, meta
from jaxcnn.storage import checkpoints
from jaxcnn.train import parallel, regimes, solver
from jaxcnn.train import step as train_lib

# Settings a resumed run may change (run length and reporting); all others must match.
RESUMABLE_CHANGES = (
    "num_steps",
    "log_every",
    "eval_every",
    "checkpoint_every",
    "snapshot_steps",
    "eval_batch_size",
    "parallelism",  # checkpoints hold host arrays either way (equal within float tolerance)
)


COMPUTE_DTYPES = ("float32", "bfloat16")


def _f(default, help_text, **meta):
    return dataclasses.field(default=default, metadata={"help": help_text, **meta})


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """One training run. Solver fields follow Caffe's solver.prototxt (docs/methods.md §2)."""

    num_classes: int = _f(0, "Classifier outputs (scripts use the dataset's; 0: not set yet).")
    num_steps: int = _f(1000, "Iterations (Caffe's max_iter).")
    batch_size: int = _f(256, "Global batch size (all processes and devices).")
    preset: str = _f("small", "Network geometry preset.", choices=tuple(alexnet.PRESETS))
    # e.g. {"width": 0.25}; scripts derive it from a NetworkSpec (not a flag of its own).
    model_overrides: dict = dataclasses.field(default_factory=dict, metadata={"flag": False})
    compute_dtype: str = _f(
        "float32",
        "Compute precision (parameters and optimizer stay float32).",
        choices=COMPUTE_DTYPES,
    )
    regime: str = _f("pretrain", "Training regime.", choices=regimes.REGIMES)
    init_from: str = _f(
        "",
        "Run directory of the source network (ft, fc-ft), or one written by "
        "experiments/import_caffe.py.",
    )
    init_step: int = _f(-1, "Its checkpoint step (-1: the latest).")
    base_lr: float = _f(0.01, "Base learning rate.")
    lr_gamma: float = _f(0.1, "Learning-rate factor at every step of the schedule.")
    lr_step_size: int = _f(100_000, "Iterations between learning-rate steps.")
    momentum: float = _f(0.9, "Momentum.")
    weight_decay: float = _f(5e-4, "Weight decay (L2).")
    bias_lr_mult: float = _f(2.0, "Learning-rate multiplier of the biases.")
    bias_decay_mult: float = _f(0.0, "Weight-decay multiplier of the biases.")
    seed: int = _f(0, "Initialisation, dropout and data-order seed.")
    snapshot_steps: tuple[int, ...] = _f((), "Iterations whose checkpoints are kept permanently.")
    checkpoint_every: int = _f(1000, "Iterations between rolling checkpoints.")
    log_every: int = _f(50, "Iterations between progress lines.")
    eval_every: int = _f(0, "Iterations between validations (0: only at the end).")
    eval_batch_size: int = _f(0, "Validation batch per process (0: the training batch).")
    num_local_devices: int = _f(0, "Local devices to use (0: all).")
    parallelism: str = _f(
        "auto",
        "Data parallelism: jax.pmap, or jax.jit over a device mesh with the batch sharded on its "
        "'data' axis; auto: jit (JAX's recommended path, and faster on one CPU device).",
        choices=parallel.PARALLELISMS,
    )

    def __post_init__(self):
        if self.regime not in regimes.REGIMES:
            raise ValueError(f"regime must be one of {regimes.REGIMES}, got {self.regime!r}")
        if (self.regime in regimes.NEEDS_SOURCE) != bool(self.init_from):
            raise ValueError(
                f"init_from is required for {regimes.NEEDS_SOURCE} and only for "
                f"them (regime {self.regime!r}, init_from {self.init_from!r})"
            )
        if self.compute_dtype not in COMPUTE_DTYPES:
            raise ValueError(
                f"compute_dtype must be one of {COMPUTE_DTYPES}, got {self.compute_dtype!r}"
            )
        if self.parallelism not in parallel.PARALLELISMS:
            raise ValueError(
                f"parallelism must be one of {parallel.PARALLELISMS}, got {self.parallelism!r}"
            )
        if self.num_classes < 0 or self.batch_size < 1:
            raise ValueError(f"need num_classes >= 0 and batch_size >= 1, got {self}")
        if self.num_steps < 0 or self.log_every < 1 or self.checkpoint_every < 1:
            raise ValueError("need num_steps >= 0, log_every >= 1 and checkpoint_every >= 1")
        object.__setattr__(self, "snapshot_steps", tuple(int(s) for s in self.snapshot_steps))
        self.module()  # the network must be buildable (input size, widths) before any work

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        d = dict(d)
        d["snapshot_steps"] = tuple(d.get("snapshot_steps", ()))
        return cls(**d)

    def module(self) -> alexnet.AlexNet:
        return meta.module_from_meta(model_meta(self))

    def learning_rate(self) -> solver.Schedule:
        return solver.step_schedule(self.base_lr, gamma=self.lr_gamma, step_size=self.lr_step_size)

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
            self.classifier_lr_mult(),
        )

    def classifier_lr_mult(self) -> float:
        """Factor on the classifier's (fc8's) learning-rate multipliers: 1 here; R-CNN's window
        fine-tuning (`jaxcnn.detect.window_finetune`) gives its new classifier 10."""
        return 1.0


@functools.cache
def _caffe_optimizer(
    treedef, base_lr, gamma, step_size, momentum, weight_decay, bias_lr_mult, bias_decay_mult, head
):
    skeleton = jax.tree_util.tree_unflatten(treedef, [0.0] * treedef.num_leaves)
    lr_mult, decay_mult = solver.caffe_multipliers(
        skeleton, bias_lr_mult=bias_lr_mult, bias_decay_mult=bias_decay_mult
    )
    if head != 1.0 and "fc8" in lr_mult:
        lr_mult = {**lr_mult, "fc8": jax.tree_util.tree_map(lambda m: m * head, lr_mult["fc8"])}
    schedule = solver.step_schedule(base_lr, gamma=gamma, step_size=step_size)
    return solver.caffe_sgd(
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


def initial_state(config: TrainConfig, start=None) -> train_lib.TrainState:
    """Step-0 state of a run: initialisation per regime (`jaxcnn.train.regimes`) and the
    optimizer. `start(module, init_rng) -> (params, trainable)` replaces the regime's
    initialisation (e.g. a layer transplant of `jaxcnn.transfer`)."""
    module = config.module()
    init_rng, dropout_rng = jax.random.split(jax.random.PRNGKey(config.seed))
    if start is not None:
        params, trainable = start(module, init_rng)
    else:
        source = None
        if config.regime in regimes.NEEDS_SOURCE:
            step = None if config.init_step < 0 else config.init_step
            source = checkpoints.restore_params(config.init_from, step)
        params, trainable = regimes.start_params(config.regime, module, init_rng, source)
    params = jax.tree_util.tree_map(lambda x: jnp.asarray(x, jnp.float32), params)
    return train_lib.TrainState.create_for(
        apply_fn=module.apply,
        params=params,
        tx=config.optimizer(params, trainable),
        rng=dropout_rng,
        trainable=trainable,
    )
