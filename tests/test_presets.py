"""Presets: bundled and user ones, lookup, describe(), and the messages for malformed files."""

from __future__ import annotations

import re
from pathlib import Path

import pydantic
import pytest
from helpers import config_error, write_file

from focuswrap import paths, presets
from focuswrap.errors import BadInputError, ConfigError, ExitCode
from focuswrap.presets import Preset, load_preset_file

BUNDLED = sorted(p.stem for p in presets.bundled_presets_dir().glob("*.toml"))

GOOD = 'description = "A test preset."\n'


def _user_preset(name: str, text: str) -> Path:
    return write_file(paths.user_presets_dir() / f"{name}.toml", text)


def _write(tmp_path: Path, text: str | bytes, name: str = "broken.toml") -> Path:
    return write_file(tmp_path / name, text)


def _error(path: Path) -> str:
    return config_error(load_preset_file, path)


# --- bundled presets ----------------------------------------------------------------------------


def test_there_are_at_least_four_bundled_presets():
    assert len(BUNDLED) >= 4
    assert presets.DEFAULT_PRESET in BUNDLED


@pytest.mark.parametrize("name", BUNDLED)
def test_every_bundled_preset_loads_and_has_a_description(name):
    item = presets.get(name)
    assert item.name == name
    assert item.source == "bundled"
    assert not item.overrides_bundled
    assert isinstance(item.preset, Preset)
    assert item.preset.description.strip()
    assert "\n" not in item.preset.description
    assert all(rung.why.strip() for rung in item.preset.ladder)


def test_load_all_returns_every_preset():
    assert [p.name for p in presets.load_all()] == BUNDLED


def test_available_lists_the_bundled_presets():
    table = presets.available()
    assert list(table) == BUNDLED
    assert all(source == "bundled" and not overrides for _, source, overrides in table.values())


# --- lookup -------------------------------------------------------------------------------------


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(BadInputError) as info:
        presets.get("nonesuch")
    message = str(info.value)
    assert "'nonesuch'" in message
    for name in BUNDLED:
        assert name in message
    assert info.value.exit_code == ExitCode.BAD_INPUT


def test_unknown_name_lists_user_presets_too():
    _user_preset("mine", GOOD)
    with pytest.raises(BadInputError, match="mine"):
        presets.get("nonesuch")


def test_user_preset_adds_a_new_name():
    path = _user_preset("studio", GOOD + "[align]\nfisheye = false\n")
    assert presets.available()["studio"] == (path, "user", False)
    item = presets.get("studio")
    assert (item.name, item.source, item.path, item.overrides_bundled) == ("studio", "user", path, False)
    assert item.preset.description == "A test preset."
    assert "studio" in [p.name for p in presets.load_all()]


def test_user_preset_with_a_bundled_name_overrides_it():
    path = _user_preset("miniature", 'description = "My own miniature."\n[fuse]\ncontrast_window_size = 9\n')
    assert presets.available()["miniature"] == (path, "user", True)
    item = presets.get("miniature")
    assert item.source == "user" and item.overrides_bundled and item.path == path
    assert item.preset.description == "My own miniature."
    assert item.preset.fuse.contrast_window_size == 9
    # the others are still the bundled ones
    assert presets.get("rectilinear").source == "bundled"


def test_a_broken_user_preset_is_a_config_error_naming_it():
    path = _user_preset("broken", "description = \n")
    assert "broken" in presets.available()
    with pytest.raises(ConfigError, match=re.escape(str(path))):
        presets.get("broken")


def test_non_toml_files_in_the_user_folder_are_ignored():
    folder = paths.user_presets_dir()
    folder.mkdir(parents=True)
    (folder / "notes.txt").write_text("hello")
    (folder / "dir.toml").mkdir()
    assert list(presets.available()) == BUNDLED


# --- describe -----------------------------------------------------------------------------------


def test_describe_shows_both_argv_lines_and_the_ladder():
    item = presets.get("miniature")
    text = presets.describe(item)
    assert text.startswith(f"miniature: {item.preset.description}")
    assert "bundled preset" in text
    assert "align:  align_image_stack -m -e --use-given-order -C -p WORK/debug.pto PHOTO1 PHOTO2 ..." in text
    # The default remaps with nona and fuses the first photo as it is.
    assert "remap:  nona -m TIFF_m -z NONE -i 1 -i 2 ... -o WORK/aligned_ WORK/debug.pto" in text
    assert (
        "fuse:   enfuse --exposure-weight=0 --saturation-weight=0 --contrast-weight=1 --hard-mask "
        "--gray-projector=luminance --contrast-window-size=15 --output=WORK/fused.tif PHOTO1 WORK/aligned_0001.tif ..."
        in text
    )
    # The classic preset: align_image_stack remaps every frame itself, no nona line.
    classic = presets.describe(presets.get("classic"))
    assert "align:  align_image_stack -m -e --use-given-order -a WORK/aligned_ PHOTO1 PHOTO2 ..." in classic
    assert "remap:" not in classic and "WORK/fused.tif WORK/aligned_0000.tif ..." in classic
    assert "fallback ladder" in text
    ladder_lines = [ln.strip() for ln in text.splitlines() if re.match(r"\s+\d\. ", ln)]
    assert len(ladder_lines) == 4
    for n, (line, flags, rung) in enumerate(
        zip(ladder_lines, ["-i", "--corr=0.8", "-c 500", "-g 3"], item.preset.ladder, strict=False), 1
    ):
        assert line.startswith(f"{n}. {flags}")
        assert rung.why in line


def test_describe_marks_an_override_and_helps():
    _user_preset(
        "miniature",
        GOOD + '[[ladder]]\nset = { max_error = 6 }\nwhy = "looser"\nhelps = ["no-control-points"]\n',
    )
    text = presets.describe(presets.get("miniature"))
    assert "user preset" in text and "overrides the bundled one" in text
    assert "-t 6" in text and "only after: no-control-points" in text


def test_describe_without_ladder_has_no_ladder_section():
    _user_preset("plain", GOOD)
    assert "ladder" not in presets.describe(presets.get("plain"))


# --- malformed preset files ---------------------------------------------------------------------


def test_syntax_error(tmp_path):
    path = _write(tmp_path, 'description = "x"\n[fuse\ncontrast_window_size = 3\n')
    message = _error(path)
    assert "not valid TOML" in message
    assert "line 2" in message


def test_missing_description(tmp_path):
    message = _error(_write(tmp_path, "[align]\nfisheye = true\n"))
    assert ": description: Field required" in message


def test_empty_description(tmp_path):
    message = _error(_write(tmp_path, 'description = ""\n'))
    assert ": description: " in message and "at least 1 character" in message


def test_wrong_type(tmp_path):
    message = _error(_write(tmp_path, GOOD + '[fuse]\ncontrast_window_size = "big"\n'))
    assert message.count("\n") == 0
    assert ": fuse.contrast_window_size: " in message
    assert "valid integer" in message


def test_unknown_field_lists_the_allowed_ones(tmp_path):
    message = _error(_write(tmp_path, GOOD + "[fuse]\nwContrast = 1\n"))
    assert message.count("\n") == 0
    assert ": fuse.wContrast: unknown field" in message
    assert "contrast_weight" in message and "contrast_window_size" in message


def test_unknown_top_level_table(tmp_path):
    message = _error(_write(tmp_path, GOOD + "[enfuse]\nlevels = 3\n"))
    assert ": enfuse: unknown field" in message
    assert "align" in message and "fuse" in message and "ladder" in message


@pytest.mark.parametrize(
    ("toml", "field", "allowed"),
    [
        ("[fuse]\ncontrast_weight = 1.5\n", "fuse.contrast_weight", "less than or equal to 1"),
        ("[fuse]\nexposure_weight = -0.1\n", "fuse.exposure_weight", "greater than or equal to 0"),
        ("[fuse]\ncontrast_window_size = 2\n", "fuse.contrast_window_size", "greater than or equal to 3"),
        ('[fuse]\ngray_projector = "green"\n', "fuse.gray_projector", "'luminance'"),
        ('[fuse]\ncontrast_min_curvature = "lots"\n', "fuse.contrast_min_curvature", "should match pattern"),
        ("[align]\ncorrelation = 0\n", "align.correlation", "greater than 0"),
        ("[align]\ngrid = 51\n", "align.grid", "less than or equal to 50"),
        ("[align]\ncorrelation = nan\n", "align.correlation", "less than or equal to 1"),
    ],
)
def test_out_of_range(tmp_path, toml, field, allowed):
    message = _error(_write(tmp_path, GOOD + toml))
    assert message.count("\n") == 0
    assert f": {field}: " in message
    assert allowed in message


def test_one_line_per_problem(tmp_path):
    text = GOOD + "[fuse]\ncontrast_weight = 1.5\ncontrast_window_size = 2\nwContrast = 1\n[align]\ngrid = 0\n"
    message = _error(_write(tmp_path, text))
    lines = message.splitlines()
    assert len(lines) == 4
    assert {ln.split(": ")[1] for ln in lines} == {
        "fuse.contrast_weight",
        "fuse.contrast_window_size",
        "fuse.wContrast",
        "align.grid",
    }


def test_ladder_rung_with_unknown_option(tmp_path):
    text = GOOD + '[[ladder]]\nset = { corelation = 0.8 }\nwhy = "typo"\n'
    message = _error(_write(tmp_path, text))
    assert ": ladder.0.set.corelation: unknown field" in message
    assert "correlation" in message.split("allowed here:")[1]


def test_ladder_rung_without_why(tmp_path):
    message = _error(_write(tmp_path, GOOD + "[[ladder]]\nset = { grid = 3 }\n"))
    assert ": ladder.0.why: Field required" in message


def test_ladder_rung_whose_cumulative_options_are_invalid(tmp_path):
    # Each rung's own values are only type-checked; the range is checked on the options it produces.
    text = GOOD + '[[ladder]]\nset = { grid = 3 }\nwhy = "a"\n[[ladder]]\nset = { correlation = 1.5 }\nwhy = "b"\n'
    message = _error(_write(tmp_path, text))
    assert message.count("\n") == 0
    assert ": ladder: step 2 gives invalid align options: correlation: " in message
    assert "less than or equal to 1" in message


def test_ladder_rung_adding_a_managed_extra_arg(tmp_path):
    text = GOOD + '[[ladder]]\nset = { extra_args = ["-a", "x"] }\nwhy = "a"\n'
    message = _error(_write(tmp_path, text))
    assert ": ladder: step 1 gives invalid align options: extra_args: " in message
    assert "-a" in message


def test_invalid_align_does_not_also_blame_the_ladder(tmp_path):
    text = GOOD + '[align]\ngrid = 0\n[[ladder]]\nset = { grid = 3 }\nwhy = "a"\n'
    assert _error(_write(tmp_path, text)).splitlines() == [
        f"{tmp_path / 'broken.toml'}: align.grid: Input should be greater than or equal to 1"
    ]


@pytest.mark.parametrize(
    ("toml", "expect"),
    [
        ('[align]\nextra_args = "--gpu"\n', "valid list"),
        ('[fuse]\nextra_args = ["--output=x"]\n', "--output"),
        ('[fuse]\nextra_args = ["-o", "x"]\n', "-o"),
        ('[fuse]\nextra_args = ["-ox.tif"]\n', "-o"),
        ('[fuse]\nextra_args = ["--out=x.tif"]\n', "--output"),
        ('[align]\nextra_args = ["-a", "x"]\n', "-a"),
        ('[align]\nextra_args = ["-v"]\n', "-v"),
        ('[align]\nextra_args = ["--use-given-order"]\n', "--use-given-order"),
        ('[align]\nextra_args = ["-c 500"]\n', "single argument"),
        ('[fuse]\nextra_args = ["--levels=3", "--compression = lzw"]\n', "single argument"),
        ('[fuse]\nextra_args = [" --levels=3"]\n', "single argument"),
        ('[fuse]\nextra_args = ["--levels=3\\n"]\n', "single argument"),
        ('[fuse]\nextra_args = [""]\n', "single argument"),
        ('[fuse]\nextra_args = ["--"]\n', "--"),
        ('[fuse]\nextra_args = ["lzw", "--compression"]\n', "must start with an option"),
        ("[fuse]\nextra_args = [3]\n", "valid string"),
    ],
)
def test_bad_extra_args(tmp_path, toml, expect):
    message = _error(_write(tmp_path, GOOD + toml))
    assert message.count("\n") == 0
    assert ".extra_args" in message
    assert expect in message


def test_good_extra_args(tmp_path):
    preset = load_preset_file(
        _write(
            tmp_path,
            GOOD
            + '[align]\nextra_args = ["--gpu", "-f", "50"]\n[fuse]\nextra_args = ["--levels=3", "--compression=lzw"]\n',
        )
    )
    assert preset.align.extra_args == ["--gpu", "-f", "50"]
    assert preset.fuse.extra_args == ["--levels=3", "--compression=lzw"]


def test_non_utf8_file(tmp_path):
    message = _error(_write(tmp_path, b'description = "caf\xe9"\n'))
    assert "not UTF-8" in message


def test_deeply_nested_toml_is_a_config_error(tmp_path):
    # Python 3.11's tomllib recurses per nesting level and would raise RecursionError.
    message = _error(_write(tmp_path, "description = " + "[" * 3000 + "]" * 3000 + "\n"))
    assert "not valid TOML" in message


def test_missing_file_is_a_config_error(tmp_path):
    message = _error(tmp_path / "absent.toml")
    assert "cannot be read" in message


def test_a_folder_is_a_config_error(tmp_path):
    folder = tmp_path / "folder.toml"
    folder.mkdir()
    assert "cannot be read" in _error(folder)


def test_preset_models_are_frozen():
    preset = presets.get("miniature").preset
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        preset.align.fisheye = False  # type: ignore[misc]


def test_a_rung_helping_an_unknown_diagnosis_is_refused_naming_file_and_field(tmp_path: Path) -> None:
    from focuswrap.errors import ConfigError

    path = tmp_path / "typo.toml"
    path.write_text(
        'description = "typo"\n[[ladder]]\nwhy = "try harder"\nhelps = ["no-control-point"]\n[ladder.set]\ngrid = 3\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_preset_file(path)
    message = str(caught.value)
    assert len(message.splitlines()) == 1
    assert message.startswith(f"{path}: ladder.0.helps: ")
    assert "'no-control-point' is not a diagnosis" in message and "'no-control-points'" in message


def test_bundled_rungs_name_known_diagnoses() -> None:
    from focuswrap.diagnose import DIAGNOSES

    for item in presets.load_all():
        for rung in item.preset.ladder:
            assert set(rung.helps) <= DIAGNOSES.keys(), item.name
