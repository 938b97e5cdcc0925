"""Flags generated from the typed config dataclasses: the one way experiment scripts get their
settings.

`define(cls)` defines one flag per field of a frozen dataclass, recursing into nested dataclass
fields (flattened: `StudyConfig.network.width` is `--width`), with the field's default and the
help text in its metadata. A field whose metadata names `choices` becomes an enum flag (for a
tuple field: every item must be one of them); `check` is a function that raises ValueError on a
bad value. Both are validated when the flags are parsed, so a typo stops the script at once with
the valid choices; `flag: False` keeps a field out of the flags (its default or a value given to
`build` is used). `build(cls)` makes the config from the parsed flags.
"""

from __future__ import annotations

import dataclasses

from absl import flags

FLAGS = flags.FLAGS


def _validator(name, check, fv):
    def ok(value):
        try:
            check(value)
        except ValueError as e:
            raise flags.ValidationError(f"--{name}: {e}") from None
        return True

    flags.register_validator(name, ok, flag_values=fv)


def _items_in(name, choices, convert, fv):
    def check(values):
        bad = [v for v in values if convert(v) not in choices]
        if bad:
            raise ValueError(f"{bad} not among the valid choices {list(choices)}")

    _validator(name, check, fv)


def _define_field(field, default, fv) -> None:
    name, meta = field.name, field.metadata
    helptext = meta.get("help", field.name)
    choices = meta.get("choices")
    if isinstance(default, bool):
        flags.DEFINE_bool(name, default, helptext, flag_values=fv)
    elif choices is not None and not isinstance(default, tuple):
        flags.DEFINE_enum(name, default, list(choices), helptext, flag_values=fv)
    elif isinstance(default, int):
        flags.DEFINE_integer(name, default, helptext, flag_values=fv)
    elif isinstance(default, float):
        flags.DEFINE_float(name, default, helptext, flag_values=fv)
    elif isinstance(default, tuple):
        flags.DEFINE_list(name, [str(v) for v in default], helptext, flag_values=fv)
        convert = type(default[0]) if default else str
        if choices is not None:
            _items_in(name, choices, convert, fv)
        else:
            _validator(name, lambda values: [convert(v) for v in values], fv)
    else:
        flags.DEFINE_string(name, default, helptext, flag_values=fv)
    if "check" in meta:
        _validator(name, meta["check"], fv)


def _default(field):
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    raise TypeError(f"{field.name} has no default: pass it to build() and skip it in define()")


def define(cls, *, skip: tuple[str, ...] = (), flag_values=FLAGS) -> None:
    """Flags for every field of `cls` (and of its nested dataclasses) except `skip`."""
    for field in dataclasses.fields(cls):
        if field.name in skip or not field.metadata.get("flag", True):
            continue
        default = _default(field)
        if dataclasses.is_dataclass(default):
            define(type(default), skip=skip, flag_values=flag_values)
        else:
            _define_field(field, default, flag_values)


def build(cls, *, flag_values=FLAGS, **given):
    """`cls` from the parsed flags; `given` fields (skipped in `define`) are passed as they are."""
    values = {}
    for field in dataclasses.fields(cls):
        if field.name in given:
            values[field.name] = given[field.name]
            continue
        if not field.metadata.get("flag", True):
            continue  # the dataclass's default
        default = _default(field)
        if dataclasses.is_dataclass(default):
            values[field.name] = build(type(default), flag_values=flag_values)
        elif isinstance(default, tuple):
            convert = type(default[0]) if default else str
            values[field.name] = tuple(convert(v) for v in getattr(flag_values, field.name))
        else:
            values[field.name] = getattr(flag_values, field.name)
    return cls(**values)


def require_items(name: str, choices, *, convert=str, flag_values=FLAGS) -> None:
    """Parse-time check that every item of the list flag `name` is one of `choices`."""
    _items_in(name, tuple(choices), convert, flag_values)
