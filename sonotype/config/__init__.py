"""Typed config models, one module per stage, and a registry by kind.

A kind names a config schema: `example`, `ingest`, `model`, `train`, ... A YAML file
under `configs/` has the kind of its folder (`configs/model/tiny.yaml` → `model`) or of
its own name (`configs/ingest.yaml` → `ingest`). Config modules import only pydantic
and the standard library, so importing them all is cheap.
"""

from pathlib import Path

from pydantic import BaseModel

from sonotype.config.cluster import ClusterConfig
from sonotype.config.demo import DemoConfig
from sonotype.config.encode import EncodeConfig
from sonotype.config.example import ExampleConfig
from sonotype.config.ingest import IngestConfig
from sonotype.config.load import CONFIGS_DIR
from sonotype.config.model import ModelConfig
from sonotype.config.reader import ReaderConfig
from sonotype.config.report import ReportConfig
from sonotype.config.train import TrainConfig
from sonotype.errors import ConfigError

_MODELS: dict[str, type[BaseModel]] = {
    "cluster": ClusterConfig,
    "demo": DemoConfig,
    "encode": EncodeConfig,
    "example": ExampleConfig,
    "ingest": IngestConfig,
    "model": ModelConfig,
    "reader": ReaderConfig,
    "report": ReportConfig,
    "train": TrainConfig,
}


def config_kinds() -> list[str]:
    """Every known config kind."""
    return sorted(_MODELS)


def config_model(kind: str) -> type[BaseModel]:
    """The config model class of `kind`.

    Raises:
        ConfigError: unknown kind.
    """
    if kind not in _MODELS:
        raise ConfigError(f"unknown config kind {kind!r}; expected one of {config_kinds()}")
    return _MODELS[kind]


def kind_of_path(path: Path) -> str | None:
    """The kind of a config file inside `configs/`, or None if it is elsewhere."""
    try:
        relative = path.resolve().relative_to(CONFIGS_DIR)
    except ValueError:
        return None
    candidate = relative.parts[0] if len(relative.parts) > 1 else relative.stem
    return candidate if candidate in _MODELS else None
