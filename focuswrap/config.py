"""The user config file (``config.toml``), as a strict pydantic model."""

from __future__ import annotations

import sys
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from focuswrap import paths
from focuswrap.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class Config(BaseModel):
    """Settings a user may put in config.toml; every field is optional."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    hugin_dir: Path | None = Field(None, description="Folder holding align_image_stack and enfuse.")
    preset: str | None = Field(None, description="Preset used when --preset is not given.")
    timeout: float = Field(1800.0, gt=0, description="Seconds one Hugin tool may run before it is stopped.")
    cache_max_mb: int = Field(2048, ge=0, description="Size limit of the aligned-frame cache (0 turns it off).")


def format_validation_error(path: Path | str, exc: ValidationError) -> str:
    """One line per problem: ``file: field: message``."""
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        lines.append(f"{path}: {loc}: {msg}")
    return "\n".join(lines)


def read_toml(path: Path) -> dict:
    """Parse a TOML file, turning every failure into a :class:`ConfigError`."""
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}.") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not valid TOML: the file is not UTF-8 text.") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc.strerror or exc}.") from None


def load_config(path: Path | None = None) -> Config:
    """Load config.toml (a missing file gives the defaults)."""
    path = path or paths.config_file()
    if not path.exists():
        return Config()
    data = read_toml(path)
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(path, exc)) from None
