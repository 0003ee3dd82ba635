"""Argv builders for align_image_stack and enfuse: pure functions, tested by list equality."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from focuswrap import presets
from focuswrap.hugin import align, enfuse
from focuswrap.presets import AlignOptions, FuseOptions, Rung


@pytest.fixture
def miniature() -> presets.Preset:
    return presets.get("miniature").preset


def _abs(name: str) -> str:
    return os.path.abspath(name)


# --- the recipe focuswrap grew from -------------------------------------------------------------


def test_miniature_is_the_default_preset():
    assert presets.DEFAULT_PRESET == "miniature"


def test_classic_align_reproduces_the_recipe():
    argv = align.build_argv(
        command=["align_image_stack"],
        options=presets.get("classic").preset.align,
        inputs=["in1.jpg", "in2.jpg"],
        prefix="PREFIX",
    )
    assert argv == [
        "align_image_stack",
        "-m",
        "-e",
        "--use-given-order",
        "-a",
        "PREFIX",
        _abs("in1.jpg"),
        _abs("in2.jpg"),
    ]


def test_miniature_align_is_the_recipe_cropped(miniature):
    # The default adds -C (crop to the area every frame covers) to the recipe's flags.
    assert align.option_flags(miniature.align) == ["-m", "-e", "--use-given-order", "-C"]


def test_miniature_fuse_reproduces_the_recipe(miniature, tmp_path):
    out = tmp_path / "fused.tif"
    inputs = [tmp_path / "aligned_0000.tif", tmp_path / "aligned_0001.tif"]
    argv = enfuse.build_argv(command=["enfuse"], options=miniature.fuse, inputs=inputs, output=out)
    assert argv == [
        "enfuse",
        "--exposure-weight=0",
        "--saturation-weight=0",
        "--contrast-weight=1",
        "--hard-mask",
        "--gray-projector=luminance",
        "--contrast-window-size=15",
        f"--output={out}",
        *(str(p) for p in inputs),
    ]


def test_default_options_equal_the_recipe_except_fisheye():
    # The model's defaults are the recipe without -e (rectilinear lens).
    assert align.option_flags(AlignOptions()) == ["-m", "--use-given-order"]
    assert enfuse.option_flags(FuseOptions()) == [
        "--exposure-weight=0",
        "--saturation-weight=0",
        "--contrast-weight=1",
        "--hard-mask",
        "--gray-projector=luminance",
        "--contrast-window-size=15",
    ]


def test_command_may_be_several_tokens(miniature):
    # A Flatpak install runs as "flatpak run --command=align_image_stack net.sourceforge.Hugin".
    command = ["flatpak", "run", "--command=align_image_stack", "net.sourceforge.Hugin"]
    argv = align.build_argv(command=command, options=miniature.align, inputs=["a.jpg"], prefix="p_")
    assert argv[:4] == command
    assert argv[4:] == ["-m", "-e", "--use-given-order", "-C", "-a", "p_", _abs("a.jpg")]


# --- each align option maps to its flag ---------------------------------------------------------

_OFF = dict(optimize_fov=False, use_given_order=False)


@pytest.mark.parametrize(
    ("options", "flags"),
    [
        ({}, []),
        ({"optimize_fov": True}, ["-m"]),
        ({"fisheye": True}, ["-e"]),
        ({"use_given_order": True}, ["--use-given-order"]),
        ({"align_to_first": True}, ["--align-to-first"]),
        ({"center_shift": True}, ["-i"]),
        ({"correlation": 0.8}, ["--corr=0.8"]),
        ({"correlation": 1}, ["--corr=1"]),
        ({"control_points": 500}, ["-c", "500"]),
        ({"grid": 3}, ["-g", "3"]),
        ({"scale": 0}, ["-s", "0"]),
        ({"max_error": 6}, ["-t", "6"]),
        ({"max_error": 2.5}, ["-t", "2.5"]),
        ({"crop": True}, ["-C"]),
        ({"extra_args": ["--gpu", "--threads", "4"]}, ["--gpu", "--threads", "4"]),
    ],
)
def test_align_option_maps_to_its_flag(options, flags):
    assert align.option_flags(AlignOptions(**{**_OFF, **options})) == flags


def test_align_flags_keep_the_recipe_order():
    options = AlignOptions(
        optimize_fov=True,
        fisheye=True,
        use_given_order=True,
        align_to_first=True,
        center_shift=True,
        correlation=0.7,
        control_points=100,
        grid=4,
        scale=2,
        max_error=5,
        crop=True,
        extra_args=["--gpu"],
    )
    assert align.option_flags(options) == [
        "-m",
        "-e",
        "--use-given-order",
        "-C",
        "--align-to-first",
        "-i",
        "--corr=0.7",
        "-c",
        "100",
        "-g",
        "4",
        "-s",
        "2",
        "-t",
        "5",
        "--gpu",
    ]


# --- each fuse option maps to its flag ----------------------------------------------------------

_RECIPE_FUSE = [
    "--exposure-weight=0",
    "--saturation-weight=0",
    "--contrast-weight=1",
    "--hard-mask",
    "--gray-projector=luminance",
    "--contrast-window-size=15",
]


@pytest.mark.parametrize(
    ("options", "flags"),
    [
        ({"exposure_weight": 0.5}, ["--exposure-weight=0.5", *_RECIPE_FUSE[1:]]),
        ({"saturation_weight": 0.2}, [_RECIPE_FUSE[0], "--saturation-weight=0.2", *_RECIPE_FUSE[2:]]),
        ({"contrast_weight": 0.75}, [*_RECIPE_FUSE[:2], "--contrast-weight=0.75", *_RECIPE_FUSE[3:]]),
        ({"entropy_weight": 0.3}, [*_RECIPE_FUSE[:3], "--entropy-weight=0.3", *_RECIPE_FUSE[3:]]),
        ({"hard_mask": False}, [*_RECIPE_FUSE[:3], "--soft-mask", *_RECIPE_FUSE[4:]]),
        ({"gray_projector": "l-star"}, [*_RECIPE_FUSE[:4], "--gray-projector=l-star", _RECIPE_FUSE[5]]),
        ({"contrast_window_size": 7}, [*_RECIPE_FUSE[:5], "--contrast-window-size=7"]),
        ({"contrast_edge_scale": 0.3}, [*_RECIPE_FUSE, "--contrast-edge-scale=0.3"]),
        ({"contrast_min_curvature": "0.5%"}, [*_RECIPE_FUSE, "--contrast-min-curvature=0.5%"]),
        ({"contrast_min_curvature": "-2"}, [*_RECIPE_FUSE, "--contrast-min-curvature=-2"]),
        ({"levels": 10}, [*_RECIPE_FUSE, "--levels=10"]),
        ({"extra_args": ["--compression=lzw", "-d", "16"]}, [*_RECIPE_FUSE, "--compression=lzw", "-d", "16"]),
    ],
)
def test_fuse_option_maps_to_its_flag(options, flags):
    assert enfuse.option_flags(FuseOptions(**options)) == flags


def test_entropy_weight_zero_is_left_out():
    assert not any(f.startswith("--entropy-weight") for f in enfuse.option_flags(FuseOptions(entropy_weight=0)))


# --- placement of -v, -p, --save-masks ----------------------------------------------------------


def test_verbose_comes_right_after_the_command(miniature):
    argv = align.build_argv(command=["ais"], options=miniature.align, inputs=["a.jpg"], prefix="p_", verbose=True)
    assert argv == ["ais", "-v", "-m", "-e", "--use-given-order", "-C", "-a", "p_", _abs("a.jpg")]


def test_pto_comes_after_the_flags_and_before_the_prefix(miniature, tmp_path):
    pto = tmp_path / "stack.pto"
    argv = align.build_argv(
        command=["ais"],
        options=miniature.align,
        inputs=["a.jpg", "b.jpg"],
        prefix=tmp_path / "aligned_",
        verbose=True,
        pto=pto,
    )
    assert argv == [
        "ais",
        "-v",
        "-m",
        "-e",
        "--use-given-order",
        "-C",
        "-p",
        str(pto),
        "-a",
        str(tmp_path / "aligned_"),
        _abs("a.jpg"),
        _abs("b.jpg"),
    ]


def test_extra_args_come_before_the_managed_options():
    options = AlignOptions(extra_args=["--gpu"])
    argv = align.build_argv(command=["ais"], options=options, inputs=["a.jpg"], prefix="p_", pto="x.pto")
    assert argv == ["ais", "-m", "--use-given-order", "--gpu", "-p", "x.pto", "-a", "p_", _abs("a.jpg")]


def test_fuse_save_masks_comes_before_the_output(tmp_path):
    argv = enfuse.build_argv(
        command=["enfuse"], options=FuseOptions(), inputs=["a.tif"], output="out.tif", save_masks="soft%n.tif"
    )
    assert argv == ["enfuse", *_RECIPE_FUSE, "--save-masks=soft%n.tif", f"--output={_abs('out.tif')}", _abs("a.tif")]


# --- inputs and output are absolute, one argv item each ----------------------------------------

AWKWARD_NAMES = ["-x.jpg", "@list.jpg", "--help.jpg", "my photo 01.jpg", "Stückchen né 写真.jpg", "-v", "@"]


def test_align_inputs_are_absolute_single_items(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = align.build_argv(command=["ais"], options=AlignOptions(), inputs=AWKWARD_NAMES, prefix="p_")
    files = argv[-len(AWKWARD_NAMES) :]
    assert files == [str(tmp_path / n) for n in AWKWARD_NAMES]
    assert len(argv) == 1 + 2 + 2 + len(AWKWARD_NAMES)
    for item in files:
        assert os.path.isabs(item)
        assert not item.startswith(("-", "@"))


def test_enfuse_inputs_and_output_are_absolute_single_items(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = enfuse.build_argv(command=["enfuse"], options=FuseOptions(), inputs=AWKWARD_NAMES, output="-out put é.tif")
    files = argv[-len(AWKWARD_NAMES) :]
    assert files == [str(tmp_path / n) for n in AWKWARD_NAMES]
    assert argv[-len(AWKWARD_NAMES) - 1] == f"--output={tmp_path / '-out put é.tif'}"
    for item in files:
        assert os.path.isabs(item) and not item.startswith(("-", "@"))


@pytest.mark.parametrize("output", ["fused.tif", Path("fused.tif"), Path("sub") / "fused.tif", "./fused.tif"])
def test_enfuse_output_is_always_absolute(tmp_path, monkeypatch, output):
    monkeypatch.chdir(tmp_path)
    argv = enfuse.build_argv(command=["enfuse"], options=FuseOptions(), inputs=[], output=output)
    (out,) = [a for a in argv if a.startswith("--output=")]
    value = out.removeprefix("--output=")
    assert os.path.isabs(value)
    assert Path(value) == (tmp_path / output).resolve()


def test_builders_accept_pathlike_and_return_strings(tmp_path):
    a = align.build_argv(
        command=["ais"],
        options=AlignOptions(),
        inputs=[tmp_path / "a.jpg"],
        prefix=tmp_path / "p_",
        pto=tmp_path / "x.pto",
    )
    f = enfuse.build_argv(
        command=["enfuse"], options=FuseOptions(), inputs=[tmp_path / "a.tif"], output=tmp_path / "o.tif"
    )
    assert all(type(t) is str for t in a + f)


def test_builders_are_keyword_only():
    with pytest.raises(TypeError):
        align.build_argv(["ais"], AlignOptions(), ["a.jpg"], "p_")  # type: ignore[misc]
    with pytest.raises(TypeError):
        enfuse.build_argv(["enfuse"], FuseOptions(), ["a.tif"], "o.tif")  # type: ignore[misc]


def test_expected_outputs(tmp_path):
    assert align.expected_outputs(tmp_path / "aligned_", 3) == [
        tmp_path / "aligned_0000.tif",
        tmp_path / "aligned_0001.tif",
        tmp_path / "aligned_0002.tif",
    ]


# --- option_flags(after, before): what a ladder rung changed ------------------------------------


def test_difference_of_equal_options_is_empty():
    assert align.option_flags(AlignOptions(), AlignOptions()) == []


def test_difference_shows_only_what_was_added():
    before = AlignOptions(fisheye=True)
    after = AlignOptions(fisheye=True, center_shift=True, control_points=500)
    assert align.option_flags(after, before) == ["-i", "-c", "500"]


def test_difference_shows_a_changed_value():
    before = AlignOptions(correlation=0.8, grid=5)
    after = AlignOptions(correlation=0.6, grid=5)
    assert align.option_flags(after, before) == ["--corr=0.6"]


def test_difference_shows_a_switched_off_flag():
    assert align.option_flags(AlignOptions(optimize_fov=False), AlignOptions()) == ["no -m"]
    assert align.option_flags(AlignOptions(use_given_order=False), AlignOptions()) == ["no --use-given-order"]


def test_difference_shows_a_removed_value():
    assert align.option_flags(AlignOptions(), AlignOptions(control_points=500)) == ["no -c 500"]


# --- the cumulative ladder ----------------------------------------------------------------------


def test_miniature_ladder_is_cumulative(miniature):
    ladder = miniature.ladder
    assert len(ladder) == 4
    steps = [align.option_flags(miniature.align_after(ladder[:n])) for n in range(len(ladder) + 1)]
    recipe = ["-m", "-e", "--use-given-order", "-C"]
    assert steps == [
        recipe,
        [*recipe, "-i"],
        [*recipe, "-i", "--corr=0.8"],
        [*recipe, "-i", "--corr=0.8", "-c", "500"],
        [*recipe, "-i", "--corr=0.8", "-c", "500", "-g", "3"],
    ]


def test_miniature_ladder_differences(miniature):
    ladder = miniature.ladder
    diffs = [
        align.option_flags(miniature.align_after(ladder[: n + 1]), miniature.align_after(ladder[:n]))
        for n in range(len(ladder))
    ]
    assert diffs == [["-i"], ["--corr=0.8"], ["-c", "500"], ["-g", "3"]]


def test_align_after_no_rungs_is_the_preset_align(miniature):
    assert miniature.align_after([]) == miniature.align


def test_a_later_rung_can_undo_an_earlier_one():
    preset = presets.Preset.model_validate(
        {
            "description": "x",
            "ladder": [
                {"set": {"center_shift": True, "correlation": 0.8}, "why": "a"},
                {"set": {"center_shift": False}, "why": "b"},
            ],
        }
    )
    assert align.option_flags(preset.align_after(preset.ladder)) == ["-m", "--use-given-order", "--corr=0.8"]


@pytest.mark.parametrize(
    ("changes", "text"),
    [
        ({"center_shift": True}, "-i"),
        ({"correlation": 0.8}, "--corr=0.8"),
        ({"control_points": 500}, "-c 500"),
        ({"grid": 3}, "-g 3"),
        ({"max_error": 6}, "-t 6"),
        ({"scale": 0, "crop": True}, "-C -s 0"),
        ({"optimize_fov": False}, "no -m"),
        ({"center_shift": False}, "(no flag change)"),
    ],
)
def test_rung_flags(changes, text):
    assert Rung.model_validate({"set": changes, "why": "because"}).flags() == text


def test_miniature_rung_flags(miniature):
    assert [r.flags() for r in miniature.ladder] == ["-i", "--corr=0.8", "-c 500", "-g 3"]


def test_nona_remap_splits_alignment_into_project_and_remap(tmp_path):
    """remap = "nona": align_image_stack writes only the project, nona remaps all but the reference."""
    from focuswrap import discovery, pipeline
    from focuswrap.presets import AlignOptions

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("align_image_stack", "enfuse", "nona"):
        exe = bin_dir / name
        exe.write_text("#!/bin/sh\n")
        exe.chmod(0o755)
    tools = discovery.find_tools(hugin_dir=bin_dir, probe=False)
    work = tmp_path / "work"
    photos = [tmp_path / "a.jpg", tmp_path / "b.jpg", tmp_path / "c.jpg"]
    cmds = pipeline.align_commands(
        AlignOptions(fisheye=True, remap="nona"), tools, photos, work, verbose=False, keep_temp=False
    )
    assert cmds.align == [
        str(bin_dir / "align_image_stack"),
        "-m",
        "-e",
        "--use-given-order",
        "-p",
        str(work / "debug.pto"),
        *map(str, photos),
    ]
    assert cmds.remap == [
        [
            str(bin_dir / "nona"),
            "-m",
            "TIFF_m",
            "-z",
            "NONE",
            "-i",
            "1",
            "-i",
            "2",
            "-o",
            str(work / "aligned_"),
            str(work / "debug.pto"),
        ]
    ]
    assert cmds.remap_env == {}
    # The reference is fused as it is; only the others are written by nona.
    assert cmds.frames == [photos[0], work / "aligned_0001.tif", work / "aligned_0002.tif"]
    assert cmds.written == cmds.frames[1:]
    # -C alone changes nothing until the project says there is a border to cut...
    asked = pipeline.align_commands(
        AlignOptions(remap="nona", crop=True), tools, photos, work, verbose=False, keep_temp=False
    )
    assert "-C" in asked.align and asked.remap[0][5:9] == ["-i", "1", "-i", "2"] and asked.frames[0] == photos[0]
    # ...and when it does, the reference must be remapped (and cropped) too.
    cropped = pipeline.align_commands(
        AlignOptions(remap="nona", crop=True), tools, photos, work, verbose=False, keep_temp=False, cropped=True
    )
    assert "-i" not in cropped.remap[0] and cropped.frames == cropped.written
    # On several cores the frames are shared out among nonas with one thread each.
    split = pipeline.align_commands(
        AlignOptions(remap="nona"),
        tools,
        [*photos, tmp_path / "d.jpg"],
        work,
        verbose=False,
        keep_temp=False,
        workers=2,
    )
    assert [argv[5:-3] for argv in split.remap] == [["-i", "1", "-i", "3"], ["-i", "2"]]
    assert split.remap_env == {"OMP_NUM_THREADS": "1"}
    many = pipeline.align_commands(
        AlignOptions(remap="nona", crop=True),
        tools,
        photos,
        work,
        verbose=False,
        keep_temp=False,
        cropped=True,
        workers=8,
    )
    assert [argv[5:-3] for argv in many.remap] == [["-i", "0"], ["-i", "1"], ["-i", "2"]]
    # Without nona beside align_image_stack, align_image_stack remaps itself.
    (bin_dir / "nona").unlink()
    plain = pipeline.align_commands(AlignOptions(remap="nona"), tools, photos, work, verbose=False, keep_temp=False)
    assert plain.remap == [] and "-a" in plain.align and "-p" not in plain.align


def test_align_needs_a_prefix_or_a_project():
    from focuswrap.hugin import align
    from focuswrap.presets import AlignOptions

    with pytest.raises(ValueError):
        align.build_argv(command=["a"], options=AlignOptions(), inputs=["x"], prefix=None)
