"""The config an output was made with, saved beside it, and the refusal to mix settings.

`OUT/catalog/ingest.yaml` holds the resolved config of the last run. A run whose
output-shaping settings (`IngestConfig.output_shaping`) differ from it would leave
segments cut, resampled or named two ways in one folder, so it is refused unless forced.
"""

import logging

from sonotype.config.ingest import IngestConfig
from sonotype.config.load import read_yaml, save_config, validate_config
from sonotype.contracts import OutputLayout
from sonotype.errors import ConfigError, OutputConflictError
from sonotype.fsio import exists, join

logger = logging.getLogger(__name__)


def saved_config_url(out: str) -> str:
    """`OUT/catalog/ingest.yaml`."""
    return join(OutputLayout(out).catalog_dir, "ingest.yaml")


def differing_settings(previous: IngestConfig, current: IngestConfig) -> list[str]:
    """Dotted names of the output-shaping settings that differ, sorted."""
    old, new = previous.output_shaping(), current.output_shaping()
    return sorted(key for key in old.keys() | new.keys() if old.get(key) != new.get(key))


def check_and_save(out: str, config: IngestConfig, force: bool) -> bool:
    """Refuse settings that would mix outputs, then save the config beside the output.

    Args:
        out: the output root.
        config: this run's settings.
        force: accept differing settings (the recordings of this run are redone).

    Returns:
        Whether the output-shaping settings changed (only possible with `force`).

    Raises:
        OutputConflictError: the output was made with other output-shaping settings.
    """
    url = saved_config_url(out)
    changed = False
    if exists(url):
        try:
            previous = validate_config(IngestConfig, read_yaml(url), url)
        except ConfigError as error:
            raise OutputConflictError(
                f"{url}: the saved config of this output is not valid for this version "
                f"({error}); use another output folder or --force"
            ) from error
        differing = differing_settings(previous, config)
        if differing and not force:
            raise OutputConflictError(
                f"{out}: was made with different settings ({', '.join(differing)}); "
                "use the same settings, another output folder, or --force to redo the "
                "recordings of this run with the new ones"
            )
        if differing:
            logger.warning(
                "--force: settings differ from those of %s (%s); recordings of this run are "
                "redone, earlier recordings not among the inputs keep the old settings",
                out,
                ", ".join(differing),
            )
        changed = bool(differing)
    save_config(config, url, "sonotype ingest")
    return changed
