"""The user config file (``config.toml``), as a strict pydantic model."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

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
    results_dir: Path | None = Field(None, description="Folder focuswrap gui saves results into (~ allowed).")

    @field_validator("hugin_dir", "results_dir", mode="before")
    @classmethod
    def _folder(cls, v: object) -> object:
        # pydantic turns "" into Path("."), silently searching the current folder;
        # a NUL byte makes every later os.stat raise an untyped ValueError.
        if isinstance(v, str) and (not v.strip() or "\0" in v):
            raise ValueError("must be a folder path (not empty, no NUL characters)")
        return v


def _model_in(annotation: object) -> type[BaseModel] | None:
    """The pydantic model inside an annotation such as ``Rung``, ``list[Rung]`` or ``Optional[X]``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _fields_at(model: type[BaseModel] | None, loc: tuple[int | str, ...]) -> list[str] | None:
    """The field names allowed in the table at ``loc`` (list indexes skipped), if known."""
    for part in loc:
        if model is None:
            return None
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        model = _model_in(field.annotation) if field is not None else None
    return list(model.model_fields) if model is not None else None


def format_validation_error(path: Path | str, exc: ValidationError, model: type[BaseModel] | None = None) -> str:
    """One line per problem: ``file: field: message``.

    With ``model`` (the class that was validated), an unknown field's line
    lists the fields allowed where it was found.
    """
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            allowed = _fields_at(model, tuple(err["loc"][:-1]))
            msg = "unknown field" + (f"; allowed here: {', '.join(allowed)}" if allowed else "")
        elif err["type"] == "value_error":
            msg = msg.removeprefix("Value error, ")
        lines.append(f"{path}: {loc}: {msg}")
    return "\n".join(lines)


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file, turning every failure into a :class:`ConfigError`."""
    try:
        with open(path, "rb") as fh:
            data: dict[str, Any] = tomllib.load(fh)
            return data
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}.") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not valid TOML: the file is not UTF-8 text.") from None
    except RecursionError:
        # Python 3.11's tomllib recurses once per nesting level: a few hundred "[" overflow it.
        raise ConfigError(f"{path}: not valid TOML: arrays or tables nested too deeply.") from None
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
        raise ConfigError(format_validation_error(path, exc, Config)) from None
