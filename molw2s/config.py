"""Config plumbing: strict pydantic models, YAML loading, ``key=value`` overrides.

Every stage defines its settings as a :class:`StrictModel` next to its code. Unknown or
mistyped keys are errors that name the key, suggest the closest valid key and list all
valid ones.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError

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


class StrictModel(BaseModel):
    """A pydantic model that rejects unknown keys and validates on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping; a clear error if the file is missing or not a mapping."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
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
    """Apply ``dotted.key=value`` overrides (values parsed as YAML) to a nested dict."""
    out = _deep_copy(data)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key=value (e.g. w2s.beta=0.1)")
        key, raw = item.split("=", 1)
        parts = [p for p in key.strip().split(".") if p]
        if not parts:
            raise ConfigError(f"override {item!r} has an empty key")
        node = out
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        try:
            node[parts[-1]] = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            problem = " ".join(str(getattr(exc, "problem", "") or exc).split())
            raise ConfigError(f"override {item!r}: the value is not valid YAML ({problem})") from None
    return out


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


def _deep_copy(data: dict[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, dict) else v for k, v in data.items()}
