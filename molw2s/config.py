"""Config plumbing: strict pydantic models, YAML loading, ``key=value`` overrides.

Every stage defines its settings as a :class:`StrictModel` next to its code. Unknown or
mistyped keys are errors that name the key, suggest the closest valid key and list all
valid ones.
"""

from __future__ import annotations

import copy
import difflib
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from molw2s.errors import ConfigError

M = TypeVar("M", bound=BaseModel)

#: names that become file or folder names (run, family, member, task label): letters,
#: digits, ``_ . -``, not starting with a dot (so no ``.`` / ``..``), at most 100 characters
SAFE_NAME = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$"


def _check_safe_name(value: str) -> str:
    if not re.match(SAFE_NAME, value):
        raise ValueError(
            "must be a plain name (letters, digits, '_', '.', '-', not starting with a dot, at most 100 "
            "characters): it names a file or folder"
        )
    return value


#: a string field that names a file or folder (see :data:`SAFE_NAME`)
SafeName = Annotated[str, AfterValidator(_check_safe_name)]


#: a random seed: numpy's generators take 0 <= seed < 2**32
Seed = Annotated[int, Field(ge=0, lt=2**32)]


class StrictModel(BaseModel):
    """A pydantic model that rejects unknown keys, infinite and NaN numbers, and validates
    on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping; a clear error if the file is missing or not a mapping."""
    path = Path(path)
    if not path.is_file():
        resolved = path.expanduser().resolve()
        raise ConfigError(f"config file not found: {path}" + (f" ({resolved})" if str(resolved) != str(path) else ""))
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys, got {type(data).__name__}")
    return data


def apply_overrides(data: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply ``dotted.key=value`` overrides (values parsed as YAML) to a nested dict. A key
    part addresses an item of a list by its index (``members.0.steps``) or, for a list of
    mappings, by its ``name`` (``members.strong.steps``)."""
    out = copy.deepcopy(data)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key=value (e.g. w2s.beta=0.1)")
        key, raw = item.split("=", 1)
        parts = [p for p in key.strip().split(".") if p]
        if not parts:
            raise ConfigError(f"override {item!r} has an empty key")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            problem = " ".join(str(getattr(exc, "problem", "") or exc).split())
            raise ConfigError(f"override {item!r}: the value is not valid YAML ({problem})") from None
        node: dict[str, Any] | list[Any] = out
        for depth, part in enumerate(parts[:-1]):
            child = _child(node, part, item, parts[:depth])
            if not isinstance(child, (dict, list)):
                child = {}
                _set(node, part, child, item, parts[:depth])
            node = child
        _set(node, parts[-1], value, item, parts[:-1])
    return out


def _list_index(items: list[Any], part: str, item: str, path: list[str]) -> int:
    """The position in ``items`` that key part ``part`` names: an index, or an item's ``name``."""
    if re.fullmatch(r"-?\d+", part):
        index = int(part)
        if not -len(items) <= index < len(items):
            raise ConfigError(f"override {item!r}: {'.'.join(path)} has {len(items)} item(s), no item {index}")
        return index
    names = [entry.get("name") for entry in items if isinstance(entry, dict)]
    if part in names:
        return names.index(part)
    raise ConfigError(
        f"override {item!r}: {'.'.join(path)} is a list; address an item by its index (0 to {len(items) - 1})"
        + (f" or its name ({', '.join(map(str, names))})" if any(names) else "")
    )


def _child(node: dict[str, Any] | list[Any], part: str, item: str, path: list[str]) -> Any:
    """The value at key part ``part`` of ``node`` (None when a mapping lacks it)."""
    if isinstance(node, list):
        return node[_list_index(node, part, item, path)]
    return node.get(part)


def _set(node: dict[str, Any] | list[Any], part: str, value: Any, item: str, path: list[str]) -> None:
    """Set key part ``part`` of ``node`` (a mapping key, or an existing list item) to ``value``."""
    if isinstance(node, list):
        node[_list_index(node, part, item, path)] = value
    else:
        node[part] = value


def build_model(model_cls: type[M], data: dict[str, Any], source: str = "config") -> M:
    """Validate ``data`` against ``model_cls``; errors name the key path and valid keys."""
    try:
        return model_cls.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(model_cls, exc, source)) from None


def load_config(model_cls: type[M], path: str | Path | None = None, overrides: Iterable[str] = ()) -> M:
    """Load a YAML file (or defaults) into ``model_cls`` and apply CLI overrides."""
    data = load_yaml(path) if path is not None else {}
    data = apply_overrides(data, overrides)
    return build_model(model_cls, data, source=str(path) if path else "config")


def format_validation_error(model_cls: type[BaseModel], exc: ValidationError, source: str) -> str:
    """Turn pydantic's errors into lines naming each bad key and what is allowed."""
    lines = [f"{source}: invalid settings for {model_cls.__name__}:"]
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        dotted = ".".join(loc) or "(top level)"
        if err["type"] == "extra_forbidden":
            valid = _valid_keys(model_cls, err["loc"][:-1])
            hint = ""
            close = difflib.get_close_matches(loc[-1], valid, n=1)
            if close:
                hint = f" (did you mean {close[0]!r}?)"
            lines.append(f"  unknown key {dotted!r}{hint}; valid keys here: {', '.join(sorted(valid))}")
        else:
            lines.append(f"  {dotted}: {err['msg']} (got {err.get('input')!r})")
    return "\n".join(lines)


def _valid_keys(model_cls: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """The field names of the (nested) model at ``loc``; [] when it cannot be resolved."""
    cls: Any = model_cls
    for part in loc:
        if isinstance(part, int):
            continue
        fields = getattr(cls, "model_fields", None)
        if not fields or part not in fields:
            return []
        cls = _model_in_annotation(fields[part].annotation)
        if cls is None:
            return []
    fields = getattr(cls, "model_fields", {})
    return [f.alias or name for name, f in fields.items()]


def _model_in_annotation(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_in_annotation(arg)
        if found is not None:
            return found
    return None
