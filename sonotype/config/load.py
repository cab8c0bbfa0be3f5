"""Load YAML configs into typed models, with dotted `key=value` overrides and clear errors.

YAML is read with `yaml.safe_load` only. Every problem pydantic finds is reported at
once, each as `field: got VALUE; expected ...`; an unknown key also lists the valid
keys beside it. The CLI turns `ConfigError` into one message and exit code 2.
"""

import copy
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from sonotype.errors import ConfigError
from sonotype.fsio import url_to_fs, write_text_atomic

M = TypeVar("M", bound=BaseModel)

CONFIGS_DIR = Path(__file__).resolve().parents[2] / "configs"
"""The repository's `configs/` folder (presets such as `model: tiny` resolve here)."""


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping from a path or URL with the safe loader.

    Raises:
        ConfigError: the file is missing, is not YAML, or is not a mapping.
    """
    fs, fs_path = url_to_fs(path)
    try:
        with fs.open(fs_path, "r") as handle:
            data = yaml.safe_load(handle)
    except FileNotFoundError as error:
        raise ConfigError(f"{path}: config file not found") from error
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({error})") from error
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings, found {type(data).__name__}")
    return data


def apply_overrides(data: Mapping[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Return a copy of `data` with dotted `a.b.c=value` overrides applied.

    Each value is parsed as YAML, so `5` is a number, `true` a boolean and `[1, 2]` a
    list. A numeric part indexes into a list (`sites.0.name=X`).

    Raises:
        ConfigError: an override is not of the form `key=value`, or its path does not
            lead through sections and existing list items.
    """
    result: dict[str, Any] = copy.deepcopy(dict(data))
    for override in overrides:
        dotted, sep, raw = override.partition("=")
        if not sep or not dotted.strip():
            raise ConfigError(
                f"override {override!r}: expected KEY=VALUE, e.g. segment.length_s=10"
            )
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError as error:
            raise ConfigError(
                f"override {override!r}: value is not valid YAML ({error})"
            ) from error
        parts = dotted.strip().split(".")
        node: Any = result
        for depth, part in enumerate(parts):
            where = ".".join(parts[: depth + 1])
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    raise ConfigError(f"override {override!r}: {where} is not an item of the list")
                key: Any = int(part)
            else:
                key = part
            if depth == len(parts) - 1:
                node[key] = value
                break
            if isinstance(node, dict):
                node.setdefault(key, {})
            node = node[key]
            if not isinstance(node, dict | list):
                raise ConfigError(f"override {override!r}: {where} is a value, not a section")
    return result


def _defaults(model: type[BaseModel]) -> dict[str, Any]:
    """The schema's defaults as plain data, or {} if the model has required fields."""
    try:
        return model.model_validate({}).model_dump(mode="json")
    except ValidationError:
        return {}


def _merge(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Mapping-wise deep merge; lists and values in `update` replace those of `base`."""
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def validate_config(model: type[M], data: Mapping[str, Any], source: str) -> M:
    """Validate a mapping into `model`.

    Args:
        model: the config model class.
        data: the settings.
        source: where they came from (file name), for messages.

    Raises:
        ConfigError: listing every invalid field with its value and what was expected.
    """
    try:
        return model.model_validate(data)
    except ValidationError as error:
        lines = [_describe_problem(model, problem) for problem in error.errors()]
        raise ConfigError(f"invalid config {source}:\n  " + "\n  ".join(lines)) from None


def load_config(model: type[M], path: str | Path | None = None, overrides: Iterable[str] = ()) -> M:
    """Load a config: schema defaults, then the YAML file, then overrides; validated.

    Args:
        model: the config model class.
        path: a YAML file (None: defaults only).
        overrides: dotted `key=value` strings.

    Raises:
        ConfigError: unreadable file, malformed override or invalid values.
    """
    data = read_yaml(path) if path is not None else {}
    # A config may name presets of another kind (a train config's `model: tiny`); they
    # are expanded first so that overrides can reach into them (`model.backbone.dim=32`).
    expand = getattr(model, "expand_presets", None)
    if expand is not None:
        data = expand(data)
    overrides = list(overrides)
    source = str(path) if path is not None else "(defaults)"
    if overrides:
        source += " with overrides " + " ".join(overrides)
        # Overrides may reach into defaults the file does not spell out (`sites.0.name`).
        data = apply_overrides(_merge(_defaults(model), data), overrides)
    return validate_config(model, data, source)


def dump_config(config: BaseModel) -> str:
    """The resolved config as YAML text (what `load_config` would read back)."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)


def save_config(config: BaseModel, url: str | Path, command: str) -> None:
    """Write the resolved config next to an output, headed by the command that used it."""
    header = f"# resolved config written by `{command}`\n"
    write_text_atomic(url, header + dump_config(config))


def resolve_preset(kind: str, name_or_path: str) -> Path:
    """Find a named preset (`tiny` → `configs/<kind>/tiny.yaml`) or accept a YAML path.

    Raises:
        ConfigError: neither a preset of that name nor a file exists.
    """
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") and candidate.exists():
        return candidate
    preset = CONFIGS_DIR / kind / f"{name_or_path}.yaml"
    if preset.exists():
        return preset
    known = sorted(p.stem for p in (CONFIGS_DIR / kind).glob("*.yaml"))
    raise ConfigError(
        f"{kind} preset {name_or_path!r} not found: expected one of {known} or a YAML file path"
    )


def _describe_problem(model: type[BaseModel], problem: Mapping[str, Any]) -> str:
    location = [str(part) for part in problem["loc"]]
    field = ".".join(location) or "(top level)"
    if problem["type"] == "extra_forbidden":
        valid = _field_names_at(model, problem["loc"][:-1])
        return f"{field}: unknown setting; valid settings here: {', '.join(valid)}"
    if problem["type"] == "missing":
        return f"{field}: required setting is missing"
    shown = repr(problem.get("input"))
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return f"{field}: got {shown}; expected {_expectation(problem['msg'])}"


def _expectation(message: str) -> str:
    """pydantic's 'Input should be X' / 'Value error, X' → 'X'."""
    for prefix in ("Input should be ", "Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            return message[len(prefix) :]
    return message[:1].lower() + message[1:]


def _field_names_at(model: type[BaseModel], location: tuple) -> list[str]:
    """The field names of the (nested) model found by following `location` from `model`."""
    current: Any = model
    for part in location:
        if isinstance(part, int):
            continue
        field = current.model_fields.get(part) if _is_model(current) else None
        if field is None:
            return []
        current = _model_in(field.annotation)
    return sorted(current.model_fields) if _is_model(current) else []


def _is_model(candidate: Any) -> bool:
    return isinstance(candidate, type) and issubclass(candidate, BaseModel)


def _model_in(annotation: Any) -> Any:
    """The first BaseModel class inside an annotation such as `X | None` or `list[X]`."""
    if _is_model(annotation):
        return annotation
    origin = typing.get_origin(annotation)
    if origin is None and not isinstance(annotation, types.UnionType):
        return None
    for argument in typing.get_args(annotation):
        found = _model_in(argument)
        if found is not None:
            return found
    return None
