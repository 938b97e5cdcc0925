"""Flags generated from the typed config dataclasses: the one way experiment scripts get their
settings.

`define(cls)` defines one flag per field of a frozen dataclass, recursing into nested dataclass
fields (flattened: `StudyConfig.network.width` is `--width`), with the field's default and the
help text in its metadata. A field whose metadata names `choices` becomes an enum flag (for a
tuple field: every item must be one of them); `check` is a function that raises ValueError on a
bad value. Both are validated when the flags are parsed, so a typo stops the script at once with
the valid choices; `flag: False` keeps a field out of the flags (its default or a value given to
`build` is used), and `flag: "name"` names the field's flag (default: the field's name; e.g. two
configs' `batch_size` fields). A nested field's default instance gives its fields' defaults
(`DataSpec.search = SearchConfig(max_boxes=150)`: `--ss_max_boxes` defaults to 150). `build(cls)`
makes the config from the parsed flags.
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


def _flag_name(field) -> str | None:
    """The flag of a field: its metadata's `flag` when a name, None for `flag: False`."""
    flag = field.metadata.get("flag", True)
    if flag is False:
        return None
    return flag if isinstance(flag, str) else field.name


def _define_field(field, name, default, fv) -> None:
    meta = field.metadata
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


def _default(field, base=None):
    """The field's default: its value in `base` (a nested field's default instance) if given."""
    if base is not None:
        return getattr(base, field.name)
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    raise TypeError(f"{field.name} has no default: pass it to build() and skip it in define()")


def _define(cls, base, skip, fv) -> None:
    for field in dataclasses.fields(cls):
        name = _flag_name(field)
        if field.name in skip or name is None:
            continue
        default = _default(field, base)
        if dataclasses.is_dataclass(default):
            _define(type(default), default, skip, fv)
        else:
            _define_field(field, name, default, fv)


def define(cls, *, skip: tuple[str, ...] = (), flag_values=FLAGS) -> None:
    """Flags for every field of `cls` (and of its nested dataclasses) except `skip`."""
    _define(cls, None, skip, flag_values)


def _build(cls, base, fv, given):
    values = {}
    for field in dataclasses.fields(cls):
        if field.name in given:
            values[field.name] = given[field.name]
            continue
        name = _flag_name(field)
        if name is None:
            continue  # the default (of `base`, else of the dataclass)
        default = _default(field, base)
        if dataclasses.is_dataclass(default):
            values[field.name] = _build(type(default), default, fv, {})
        elif isinstance(default, tuple):
            convert = type(default[0]) if default else str
            values[field.name] = tuple(convert(v) for v in getattr(fv, name))
        else:
            values[field.name] = getattr(fv, name)
    return cls(**values) if base is None else dataclasses.replace(base, **values)


def build(cls, *, flag_values=FLAGS, **given):
    """`cls` from the parsed flags; `given` fields (skipped in `define`) are passed as they are."""
    return _build(cls, None, flag_values, given)


def require_items(name: str, choices, *, convert=str, flag_values=FLAGS) -> None:
    """Parse-time check that every item of the list flag `name` is one of `choices`."""
    _items_in(name, tuple(choices), convert, flag_values)
