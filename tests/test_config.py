"""config.toml loading, and a property test: any file given to a loader is a model or a ConfigError."""

from __future__ import annotations

import math
from pathlib import Path

import pydantic
import pytest
from helpers import config_error, loaded_or_config_error, write_file
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from focuswrap import paths, presets
from focuswrap.config import Config, load_config
from focuswrap.hugin import align, enfuse
from focuswrap.presets import Preset, load_preset_file


def _config_error(path: Path) -> str:
    return config_error(load_config, path)


# --- config.toml --------------------------------------------------------------------------------


def test_missing_file_gives_the_defaults():
    assert not paths.config_file().exists()
    assert load_config() == Config()
    config = load_config()
    assert (config.hugin_dir, config.preset, config.timeout, config.cache_max_mb) == (None, None, 1800.0, 2048)


def test_missing_explicit_file_gives_the_defaults(tmp_path):
    assert load_config(tmp_path / "nope.toml") == Config()


def test_the_default_location_is_under_focuswrap_home(_isolated_home):
    assert paths.config_file() == Path(_isolated_home) / "config" / "config.toml"
    write_file(paths.config_file(), 'preset = "lowlight"\n')
    assert load_config().preset == "lowlight"


def test_empty_file_gives_the_defaults(tmp_path):
    assert load_config(write_file(tmp_path / "config.toml", "")) == Config()


def test_valid_file(tmp_path):
    path = write_file(
        tmp_path / "config.toml",
        '# mine\nhugin_dir = "/opt/hugin/bin"\npreset = "handheld"\ntimeout = 600\ncache_max_mb = 0\n',
    )
    config = load_config(path)
    assert config.hugin_dir == Path("/opt/hugin/bin")
    assert config.preset == "handheld"
    assert config.timeout == 600.0
    assert config.cache_max_mb == 0


def test_config_is_frozen():
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        Config().timeout = 5  # type: ignore[misc]


def test_syntax_error(tmp_path):
    message = _config_error(write_file(tmp_path / "config.toml", "timeout = = 3\n"))
    assert "not valid TOML" in message and "line 1" in message


def test_non_utf8(tmp_path):
    message = _config_error(write_file(tmp_path / "config.toml", b'preset = "\xff\xfe"\n'))
    assert "not UTF-8" in message


def test_a_folder_is_a_config_error(tmp_path):
    folder = tmp_path / "config.toml"
    folder.mkdir()
    assert "cannot be read" in _config_error(folder)


@pytest.mark.parametrize(
    ("toml", "field", "allowed"),
    [
        ('timeout = "long"\n', "timeout", "valid number"),
        ("timeout = 0\n", "timeout", "greater than 0"),
        ("timeout = -5\n", "timeout", "greater than 0"),
        ("timeout = nan\n", "timeout", "greater than 0"),
        ("cache_max_mb = -1\n", "cache_max_mb", "greater than or equal to 0"),
        ("cache_max_mb = 1.5\n", "cache_max_mb", "valid integer"),
        ("preset = 3\n", "preset", "valid string"),
        ("hugin_dir = 3\n", "hugin_dir", "path"),
        ('hugin_dir = ""\n', "hugin_dir", "not empty"),
        ('hugin_dir = "/opt/\\u0000bin"\n', "hugin_dir", "NUL"),
        ("[preset]\nname = 1\n", "preset", "valid string"),
    ],
)
def test_bad_value_names_file_and_field(tmp_path, toml, field, allowed):
    message = _config_error(write_file(tmp_path / "config.toml", toml))
    assert message.count("\n") == 0
    assert f": {field}: " in message
    assert allowed in message


def test_unknown_field_lists_the_allowed_ones(tmp_path):
    message = _config_error(write_file(tmp_path / "config.toml", 'huginDir = "/opt"\n'))
    assert ": huginDir: unknown field; allowed here: hugin_dir, preset, timeout, cache_max_mb" in message


def test_one_line_per_problem(tmp_path):
    message = _config_error(write_file(tmp_path / "config.toml", "timeout = 0\ncache_max_mb = -1\nfoo = 1\n"))
    assert [ln.split(": ")[1] for ln in message.splitlines()] == ["timeout", "cache_max_mb", "foo"]


# --- property test: whatever the file holds, a model or a ConfigError ---------------------------

_BARE = st.from_regex(r"[A-Za-z0-9_-]{1,12}", fullmatch=True)


def _string(text: str) -> str:
    """A TOML basic string: quotes, backslashes and control characters escaped, the rest as is."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _key(k: str) -> str:
    return k if k and all((c.isalnum() and c.isascii()) or c in "_-" for c in k) else _string(k)


def _value(v: object) -> str:
    """A TOML value (inline form) for str/int/float/bool/list/dict."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return _string(v)
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_key(k)} = {_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(type(v))


def to_toml(data: dict, tables: bool) -> str:
    """Serialise: scalars first, then (if ``tables``) dicts as [tables] and lists of dicts as [[arrays]]."""
    lines, later = [], []
    for k, v in data.items():
        if tables and isinstance(v, dict) and v:
            later.append(f"[{_key(k)}]\n" + "".join(f"{_key(kk)} = {_value(vv)}\n" for kk, vv in v.items()))
        elif tables and isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            for x in v:
                later.append(f"[[{_key(k)}]]\n" + "".join(f"{_key(kk)} = {_value(vv)}\n" for kk, vv in x.items()))
        else:
            lines.append(f"{_key(k)} = {_value(v)}\n")
    return "".join(lines) + "\n".join(later)


_scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["", " ", "-x", "--output=x", "-c 500", "luminance", "0.5%", "--gpu", "\n"]),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_BARE, inner, max_size=3)),
    max_leaves=8,
)


def _field_value(name: str) -> st.SearchStrategy:
    """Mostly plausible values for a known field, sometimes anything."""
    plausible = {
        "correlation": st.floats(0, 1.2),
        "control_points": st.integers(-2, 12000),
        "grid": st.integers(-1, 60),
        "scale": st.integers(-1, 9),
        "max_error": st.floats(-1, 2000),
        "exposure_weight": st.floats(-0.5, 1.5),
        "saturation_weight": st.floats(-0.5, 1.5),
        "contrast_weight": st.floats(-0.5, 1.5),
        "entropy_weight": st.floats(-0.5, 1.5),
        "gray_projector": st.sampled_from(
            ["average", "l-star", "lightness", "luminance", "value", "anti-value", "red"]
        ),
        "contrast_window_size": st.integers(0, 120),
        "contrast_edge_scale": st.floats(-1, 12),
        "contrast_min_curvature": st.sampled_from(["0.5%", "-2", "1.5", "x", "%"]),
        "levels": st.integers(0, 30),
        "extra_args": st.lists(
            st.sampled_from(["--gpu", "-f", "50", "--levels=3", "-o", "--output=x", "-c 500", "", "x", "--", "-ox"]),
            max_size=4,
        ),
    }.get(name, st.booleans())
    return st.one_of(plausible, plausible, _values)


def _options(model: type) -> st.SearchStrategy:
    names = list(model.model_fields)
    known = st.lists(st.sampled_from(names), unique=True, max_size=len(names)).flatmap(
        lambda chosen: st.fixed_dictionaries({n: _field_value(n) for n in chosen})
    )
    unknown = st.dictionaries(_BARE, _values, max_size=2)
    return st.one_of(
        known,
        known,
        st.tuples(known, unknown).map(lambda t: {**t[1], **t[0]}),
        _values,
    )


_rung = st.one_of(
    st.fixed_dictionaries(
        {"set": _options(presets.AlignOptions), "why": st.one_of(st.text(max_size=20), _values)},
        optional={"helps": st.lists(st.text(max_size=8), max_size=2), "extra": _values},
    ),
    _values,
)

_mixed_preset = st.fixed_dictionaries(
    {},
    optional={
        "description": st.one_of(st.text(max_size=30), st.text(min_size=1, max_size=30), _values),
        "align": _options(presets.AlignOptions),
        "fuse": _options(presets.FuseOptions),
        "ladder": st.one_of(st.lists(_rung, max_size=4), _values),
        "colour": _values,
    },
)


def _valid_options(model: type, fields: dict[str, st.SearchStrategy]) -> st.SearchStrategy:
    chosen = st.lists(st.sampled_from(sorted(fields)), unique=True, max_size=len(fields))
    return chosen.flatmap(lambda names: st.fixed_dictionaries({n: fields[n] for n in names}))


_VALID_ALIGN = {
    "optimize_fov": st.booleans(),
    "fisheye": st.booleans(),
    "center_shift": st.booleans(),
    "crop": st.booleans(),
    "align_to_first": st.booleans(),
    "use_given_order": st.booleans(),
    "correlation": st.floats(0.01, 1),
    "control_points": st.integers(1, 10000),
    "grid": st.integers(1, 50),
    "scale": st.integers(0, 8),
    "max_error": st.floats(0.01, 1000),
    "extra_args": st.lists(st.sampled_from(["--gpu", "--threads=2", "-f", "50"]), max_size=3).map(
        lambda a: ["--gpu", *a] if a else a
    ),
}
_VALID_FUSE = {
    "exposure_weight": st.floats(0, 1),
    "saturation_weight": st.floats(0, 1),
    "contrast_weight": st.floats(0, 1),
    "entropy_weight": st.floats(0, 1),
    "hard_mask": st.booleans(),
    "contrast_window_size": st.integers(3, 101),
    "gray_projector": st.sampled_from(["average", "l-star", "lightness", "luminance", "value", "anti-value"]),
    "contrast_edge_scale": st.floats(0, 10),
    "contrast_min_curvature": st.sampled_from(["0.5%", "-2", "1.5"]),
    "levels": st.integers(1, 29),
    "extra_args": st.sampled_from([[], ["--compression=lzw"], ["-d", "16"]]),
}

# Mostly valid presets, so the property also exercises what a loaded preset is used for.
_valid_preset = st.fixed_dictionaries(
    {"description": st.text(min_size=1, max_size=30)},
    optional={
        "align": _valid_options(presets.AlignOptions, _VALID_ALIGN),
        "fuse": _valid_options(presets.FuseOptions, _VALID_FUSE),
        "ladder": st.lists(
            st.fixed_dictionaries(
                {"set": _valid_options(presets.AlignOptions, _VALID_ALIGN), "why": st.text(min_size=1, max_size=20)},
                optional={"helps": st.lists(st.sampled_from(["no-control-points", "timeout"]), max_size=2)},
            ),
            max_size=4,
        ),
    },
)

_preset_dict = st.one_of(_valid_preset, _mixed_preset)

_config_dict = st.fixed_dictionaries(
    {},
    optional={
        "hugin_dir": st.one_of(st.text(max_size=20), _values),
        "preset": st.one_of(st.sampled_from(["miniature", "x"]), _values),
        "timeout": st.one_of(st.floats(-10, 1e6), _values),
        "cache_max_mb": st.one_of(st.integers(-5, 10**6), _values),
        "extra": _values,
    },
)


def _mutate(text: str, data: st.DataObject) -> str:
    """Break well-formed TOML a little: delete, insert or replace a stretch."""
    if not text:
        return text
    i = data.draw(st.integers(0, len(text) - 1), label="at")
    j = data.draw(st.integers(i, min(len(text), i + 4)), label="to")
    insert = data.draw(
        st.one_of(st.just(""), st.text(max_size=3), st.sampled_from(['"', "[", "]", "=", "\n", "{", "'''"]))
    )
    return text[:i] + insert + text[j:]


def _file_contents(shape: st.SearchStrategy) -> st.SearchStrategy:
    @st.composite
    def contents(draw: st.DrawFn) -> str | bytes:
        kind = draw(st.sampled_from(["toml", "toml", "toml", "mutated", "garbage", "bytes", "deep"]))
        if kind == "deep":  # Python 3.11's tomllib recursed into a RecursionError on these
            depth = draw(st.integers(1, 3000))
            return "x = " + draw(st.sampled_from(["[", "{y = "])) * depth
        if kind == "garbage":
            return draw(st.text(max_size=200))
        if kind == "bytes":
            return draw(st.binary(max_size=200))
        text = to_toml(draw(shape), tables=draw(st.booleans()))
        if kind == "mutated":
            text = _mutate(text, draw(st.data()))
        return text

    return contents()


_PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def test_serialiser_round_trips():
    import tomllib

    data = {
        "description": 'd "q" \n é',
        "align": {"grid": 3, "correlation": 0.5},
        "ladder": [{"set": {"grid": 2}, "why": "w"}],
    }
    assert tomllib.loads(to_toml(data, tables=True)) == data
    assert tomllib.loads(to_toml(data, tables=False)) == data


@_PROPERTY
@given(contents=_file_contents(_preset_dict))
def test_any_preset_file_is_a_preset_or_a_config_error(tmp_path_factory, contents):
    path = write_file(tmp_path_factory.mktemp("p") / "prop.toml", contents)
    preset = loaded_or_config_error(load_preset_file, path)
    if preset is None:
        return
    assert isinstance(preset, Preset)
    # A preset that loads must also build its argv, ladder steps and description without error.
    align.option_flags(preset.align)
    enfuse.option_flags(preset.fuse)
    for n in range(len(preset.ladder) + 1):
        align.option_flags(preset.align_after(preset.ladder[:n]))
    presets.describe(presets.NamedPreset("prop", preset, path, "user"))


@_PROPERTY
@given(contents=_file_contents(_config_dict))
def test_any_config_file_is_a_config_or_a_config_error(tmp_path_factory, contents):
    path = write_file(tmp_path_factory.mktemp("c") / "config.toml", contents)
    config = loaded_or_config_error(load_config, path)
    if config is None:
        return
    assert isinstance(config, Config)
    assert config.timeout > 0 and config.cache_max_mb >= 0
