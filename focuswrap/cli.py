"""The command line: Typer only.

Each command parses its options, calls one library function and shows the
result.  Exceptions become messages and exit codes in :func:`main`, and only
there.  Heavy modules are imported inside commands so that ``--help`` and
``--version`` stay quick.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from focuswrap import __version__
from focuswrap.errors import ExitCode, FocuswrapError, Interrupted

if TYPE_CHECKING:
    from focuswrap.config import Config
    from focuswrap.discovery import Tools
    from focuswrap.events import StackFailed
    from focuswrap.presets import NamedPreset

#: Where the documentation lives for someone who installed the package (and has no docs/ folder).
#: One place: every help text that points to a page builds its address from this.
DOCS_URL = "https://github.com/focuswrap/focuswrap/blob/main/docs"


def docs(page: str) -> str:
    """The address of a documentation page, e.g. docs("json") for the --json result."""
    return f"{DOCS_URL}/{page}.md"


app = typer.Typer(
    name="focuswrap",
    help="Focus-stack photos with Hugin's align_image_stack and enfuse.\n\n"
    "Example: focuswrap stack IMG_*.jpg -o stacked.jpg\n\n"
    f"Documentation: {DOCS_URL}",
    no_args_is_help=True,
    add_completion=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)
presets_app = typer.Typer(
    help="List and show presets, and find the folder for your own.",
    epilog="Examples:\n\n  focuswrap presets list\n\n  focuswrap presets show handheld\n\n  focuswrap presets path\n\n"
    f"Docs: {docs('presets')}",
    no_args_is_help=True,
)
app.add_typer(presets_app, name="presets")

HUGIN_DIR = typer.Option(
    None,
    "--hugin-dir",
    help="Folder holding align_image_stack and enfuse "
    "(else FOCUSWRAP_HUGIN_DIR, config.toml, PATH, the usual install places).",
    file_okay=False,
    metavar="FOLDER",
)


# Options several commands share, declared once.
PRESET = typer.Option(
    None, "-p", "--preset", metavar="NAME", help="Preset name (see 'focuswrap presets list'). Default: miniature."
)
NO_RETRY = typer.Option(False, "--no-retry", help="Do not climb the preset's fallback ladder when alignment fails.")
MAX_ATTEMPTS = typer.Option(
    None, "--max-attempts", min=1, metavar="N", help="At most N alignment attempts per stack (1 or more)."
)
TIMEOUT = typer.Option(
    None,
    "--timeout",
    min=1,
    metavar="SECONDS",
    help="Seconds one Hugin tool may run before it is stopped (at least 1; default 1800).",
)
QUIET = typer.Option(False, "--quiet", "-q", help="No progress output.")


def _verbose_log(value: bool) -> bool:
    if value:
        from focuswrap import logs

        logs.configure(verbose=True)
    return value


VERBOSE = typer.Option(
    False,
    "--verbose",
    "-v",
    callback=_verbose_log,
    help="Also show the exact commands, the tools' full output and focuswrap's debug log.",
)
NO_CACHE = typer.Option(False, "--no-cache", help="Neither reuse nor keep aligned frames in the cache.")
CROP = typer.Option(
    None,
    "--crop/--no-crop",
    help="Crop to the area every photo covers (default: as the preset says; all but 'classic' crop).",
)

_verbose = False  # set by --verbose: failure reports then include the tools' output


def _version(value: bool) -> None:
    if value:
        print(f"focuswrap {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """Focus-stack photos with Hugin's align_image_stack and enfuse."""


def _failed_event(exc: BaseException) -> StackFailed | None:
    from focuswrap.model import failed_event_of

    return failed_event_of(exc)


def _preset(name: str | None, config: Config) -> NamedPreset:
    """The preset asked for, else config.toml's, else the default."""
    from focuswrap import presets

    return presets.get(name or config.preset or presets.DEFAULT_PRESET)


def _tools(hugin_dir: Path | None, config: Config | None = None) -> Tools:
    """Find both Hugin tools (``config``: the already loaded config.toml, if the command has it)."""
    from focuswrap import discovery
    from focuswrap.config import load_config

    config = config or load_config()
    return discovery.find_tools(hugin_dir=hugin_dir, config_hugin_dir=config.hugin_dir)


@app.command(
    epilog="Examples:\n\n  focuswrap stack IMG_1.jpg IMG_2.jpg IMG_3.jpg -o stacked.jpg\n\n"
    "  focuswrap stack shots/*.jpg --preset handheld\n\n  focuswrap stack shots/*.jpg --dry-run\n\n"
    f"Docs: {docs('getting-started')}\n\n"
    f"The --json keys: {docs('json')}\n\nThe --map picture: {docs('map')}"
)
def stack(
    photos: list[Path] = typer.Argument(
        ..., help="The photos of one focus bracket (two or more).", show_default=False, metavar="PHOTO..."
    ),
    output: Path | None = typer.Option(
        None,
        "-o",
        "--output",
        metavar="FILE",
        help="Result file (.jpg, .tif, .png); its folder is created if needed. "
        "Default: next to the first photo, named FIRST-stacked.EXT.",
    ),
    preset: str | None = PRESET,
    force: bool = typer.Option(False, "--force", "-f", help="Replace the output file if it exists."),
    dry_run: bool = typer.Option(False, "--dry-run", "-n", help="Print the exact commands, run nothing."),
    keep_temp: bool = typer.Option(
        False, "--keep-temp", help="Keep the work folder (the aligned photos, Hugin's project file) to look at."
    ),
    keep_order: bool = typer.Option(
        False, "--keep-order", help="Use the photos in the order given (default: natural name order)."
    ),
    no_retry: bool = NO_RETRY,
    max_attempts: int | None = MAX_ATTEMPTS,
    timeout: float | None = TIMEOUT,
    quiet: bool = QUIET,
    verbose: bool = VERBOSE,
    as_json: bool = typer.Option(
        False, "--json", help="Print the result as one JSON object (its keys: see the docs below)."
    ),
    map_output: Path | None = typer.Option(
        None,
        "--map",
        metavar="FILE.png",
        help="Also write a PNG showing which photo each part of the result came from (see the docs below).",
    ),
    crop: bool | None = CROP,
    no_cache: bool = NO_CACHE,
    hugin_dir: Path | None = HUGIN_DIR,
    events: bool = typer.Option(
        False, "--events", hidden=True, help="Print every event as one JSON object per line (for the local page)."
    ),
) -> None:
    """Stack photos focused at different distances into one sharp image."""
    global _verbose
    _verbose = verbose
    # --events: the one typed event stream, one JSON line each, for the local page.
    from focuswrap.events import json_lines

    with json_lines(events, _failed_event) as sink:
        from focuswrap.config import load_config

        config = load_config()
        # The tools are found and asked their versions while the rest loads.
        from focuswrap import discovery

        with discovery.finding_tools(hugin_dir=hugin_dir, config_hugin_dir=config.hugin_dir) as finding:
            from focuswrap import display, pipeline, presets

            request = dataclasses.replace(
                pipeline.StackRequest.from_config(
                    config,
                    presets.with_crop(_preset(preset, config), crop),
                    no_retry=no_retry,
                    max_attempts=max_attempts,
                    timeout=timeout,
                    quiet=quiet,
                    no_cache=no_cache,
                ),
                inputs=photos,
                output=output,
                force=force,
                keep_temp=keep_temp,
                keep_order=keep_order,
                map_output=map_output,
            )
            tools = finding.result()
        if dry_run:
            display.print_plan(pipeline.plan(request, tools))
            return
        # Every interface follows the stack through the same typed events.
        reporter = display.make_reporter(quiet=quiet or as_json or sink is not None, verbose=verbose)
        result = display.ResultCatcher()
        with reporter:
            pipeline.stack(request, tools, reporter, on_event=sink or result)
        if sink is None and result.finished is not None:
            display.print_result(result.finished, as_json=as_json)


@app.command(
    "batch",
    epilog="Examples:\n\n  focuswrap batch ~/Pictures/OpenCamera\n\n"
    "  focuswrap batch shots/ --dry-run\n\n"
    "  focuswrap batch shots/ -o stacked/ --format tif --group-by time --gap 10\n\n"
    f"Docs: {docs('batch')}",
)
def batch_command(
    folder: Path = typer.Argument(..., help="Folder holding the focus brackets.", show_default=False, metavar="FOLDER"),
    outdir: Path | None = typer.Option(
        None,
        "-o",
        "--output-dir",
        metavar="FOLDER",
        help="Folder for the results, named GROUP-stacked.EXT (created if needed). Default: FOLDER/stacked.",
    ),
    group_by: str = typer.Option(
        "auto",
        "--group-by",
        metavar="HOW",
        help="How photos form brackets: names (Open Camera IMG_date_time_N), folders (one per subfolder), "
        "time (pauses in capture time), or auto: folders if a subfolder holds photos, else names, else time.",
    ),
    gap: float = typer.Option(
        5.0,
        "--gap",
        metavar="SECONDS",
        help="With time grouping: a pause longer than this between two photos starts a new bracket.",
    ),
    fmt: str = typer.Option("jpg", "--format", metavar="jpg|tif|png", help="Result format: jpg, tif or png."),
    preset: str | None = PRESET,
    force: bool = typer.Option(False, "--force", "-f", help="Stack again even where the result is up to date."),
    dry_run: bool = typer.Option(
        False, "--dry-run", "-n", help="List the brackets found and the results they would give; run nothing."
    ),
    jobs: int = typer.Option(
        1,
        "--jobs",
        "-j",
        min=1,
        metavar="N",
        help="Stacks to run at once, 1 or more (each needs its own memory for its frames).",
    ),
    keep_temp: bool = typer.Option(False, "--keep-temp", help="Keep each stack's work folder for inspection."),
    no_retry: bool = NO_RETRY,
    max_attempts: int | None = MAX_ATTEMPTS,
    timeout: float | None = TIMEOUT,
    quiet: bool = QUIET,
    verbose: bool = VERBOSE,
    crop: bool | None = CROP,
    no_cache: bool = NO_CACHE,
    hugin_dir: Path | None = HUGIN_DIR,
) -> None:
    """Stack every focus bracket in a folder, one result per bracket, with a summary at the end.

    Open Camera brackets are found by their names, other photos by subfolder or by pauses between shots.
    """
    global _verbose
    _verbose = verbose
    from focuswrap import batch, display, presets
    from focuswrap.config import load_config
    from focuswrap.model import StackRequest

    config = load_config()
    chosen = presets.with_crop(_preset(preset, config), crop)
    tools = None if dry_run else _tools(hugin_dir, config)  # listing the brackets needs no Hugin
    reporter = display.make_reporter(quiet=quiet or dry_run, verbose=verbose)
    with reporter:
        # The same typed request as `stack` (each bracket sets its photos and output).
        request = dataclasses.replace(
            StackRequest.from_config(
                config,
                chosen,
                no_retry=no_retry,
                max_attempts=max_attempts,
                timeout=timeout,
                quiet=quiet,
                no_cache=no_cache,
            ),
            keep_temp=keep_temp,
        )
        result = batch.run(
            folder,
            tools=tools,
            request=request,
            outdir=outdir,
            fmt=fmt,
            group_by=group_by,
            gap=gap,
            force=force,
            jobs=jobs,
            dry_run=dry_run,
            reporter=reporter,
        )
    batch.print_report(result, verbose=verbose)
    if result.exit_code:
        raise typer.Exit(int(result.exit_code))


@app.command(
    epilog="Examples:\n\n  focuswrap gui\n\n  focuswrap gui --no-browser --port 8765",
)
def gui(
    port: int = typer.Option(
        0, "--port", min=0, max=65535, metavar="NUMBER", help="Port to listen on, 0-65535 (default 0: a free one)."
    ),
    no_browser: bool = typer.Option(False, "--no-browser", help="Only print the address; do not open a browser."),
    host: str = typer.Option(
        "127.0.0.1", "--host", metavar="ADDRESS", help="Address to listen on; only this computer unless forced."
    ),
    force_host: bool = typer.Option(
        False, "--force-host", help="Allow a --host other computers can reach (they could then use the page)."
    ),
    results_dir: Path | None = typer.Option(
        None,
        "--results-dir",
        file_okay=False,
        metavar="FOLDER",
        help="Folder for the results (else config.toml's results_dir, else Pictures/focuswrap).",
    ),
) -> None:
    """Open a page in your web browser: drop your photos there and get the stacked picture, no typing."""
    from focuswrap.gui import server

    try:
        server.serve(
            host=host,
            port=port,
            open_browser=not no_browser,
            force_host=force_host,
            results_dir=results_dir,
            say=lambda text: print(text, flush=True),
        )
    except Interrupted:
        print("focuswrap gui stopped; its temporary files were removed.", file=sys.stderr)
        raise typer.Exit(int(ExitCode.INTERRUPTED)) from None


@app.command(epilog="Examples:\n\n  focuswrap doctor\n\n  focuswrap doctor --hugin-dir /opt/hugin/bin")
def doctor(hugin_dir: Path | None = HUGIN_DIR) -> None:
    """Show where Hugin's tools are, their versions, and focuswrap's folders."""
    from focuswrap import doctor as doctor_mod

    text, ok = doctor_mod.report(hugin_dir=hugin_dir)
    print(text)
    if not ok:
        raise typer.Exit(int(ExitCode.MISSING_TOOL))


@app.command(epilog="Example:\n\n  focuswrap demo ~/focuswrap-demo")
def demo(
    folder: Path = typer.Argument(
        Path("focuswrap-demo"), help="Where to write the practice photos and the result.", metavar="[FOLDER]"
    ),
    force: bool = typer.Option(False, "--force", "-f", help="Replace an earlier demo result."),
    quiet: bool = QUIET,
    hugin_dir: Path | None = HUGIN_DIR,
) -> None:
    """Draw practice photos of a painted figure, stack them with the real tools, and say how well it went."""
    from focuswrap import demo as demo_mod
    from focuswrap import display
    from focuswrap.errors import BadInputError

    if folder.exists() and not folder.is_dir():
        raise BadInputError(f"{folder} is a file; give the demo a folder to write its photos into.")
    tools = _tools(hugin_dir)
    reporter = display.make_reporter(quiet=quiet, verbose=False)
    with reporter:
        outcome = demo_mod.run(folder, tools, reporter, force=force)
    print(demo_mod.summary(outcome))


@presets_app.command("list", epilog="Example:\n\n  focuswrap presets list")
def presets_list() -> None:
    """List the presets and when to use each."""
    from focuswrap import presets

    lines, warning = presets.listing()
    print("\n".join(lines))
    if warning:
        print(f"focuswrap: warning: {warning}", file=sys.stderr)


@presets_app.command(
    "show", epilog="Examples:\n\n  focuswrap presets show miniature\n\n  focuswrap presets show handheld"
)
def presets_show(name: str = typer.Argument(..., help="Preset name.", metavar="NAME")) -> None:
    """Show the exact arguments a preset gives each tool, and its fallback ladder."""
    from focuswrap import presets

    print(presets.describe(presets.get(name)))


@presets_app.command("new", epilog="Example:\n\n  focuswrap presets new mine --from handheld")
def presets_new(
    name: str = typer.Argument(..., help="Name of your new preset (its file is NAME.toml).", metavar="NAME"),
    source: str = typer.Option("miniature", "--from", metavar="PRESET", help="Preset to start from."),
    force: bool = typer.Option(False, "--force", "-f", help="Start the file again if it exists."),
) -> None:
    """Write a commented copy of a preset into your presets folder, to edit."""
    from focuswrap import presets

    path = presets.new_user_preset(name, source=source, force=force)
    print(f"Wrote {path}\nEdit it, then: focuswrap stack PHOTOS... --preset {name}")


@presets_app.command("path", epilog="Example:\n\n  focuswrap presets path")
def presets_path() -> None:
    """Print the folder where your own presets live."""
    from focuswrap import paths

    print(paths.user_presets_dir())


cache_app = typer.Typer(
    help="The cache of aligned photos that makes blending the same photos again quick.",
    epilog=f"Examples:\n\n  focuswrap cache info\n\n  focuswrap cache clear\n\nDocs: {docs('cache')}",
    no_args_is_help=True,
)
app.add_typer(cache_app, name="cache")


@cache_app.command("info", epilog="Example:\n\n  focuswrap cache info")
def cache_info() -> None:
    """Show where the cache is, how full, and its limit."""
    from focuswrap import cache
    from focuswrap.config import load_config

    print(cache.describe(load_config().cache_max_mb))


@cache_app.command("clear", epilog="Example:\n\n  focuswrap cache clear")
def cache_clear() -> None:
    """Remove every cached set of aligned photos (your photos and results stay)."""
    from focuswrap import cache

    print(f"Removed {cache.clear()} cached stack(s).")


def main() -> None:
    """Console entry point: run the app, turn every known failure into a message and an exit code."""
    from focuswrap import logs, stops, streams

    # Before anything is printed: a closed, full or gone terminal (or one that
    # cannot show a character) silences the display, never the work.
    streams.install()
    logs.configure()
    stops.install()
    try:
        from focuswrap import helpstyle

        helpstyle.command(app)(prog_name="focuswrap")
    except (Interrupted, Exception) as exc:
        failure = stops.what_happened(exc)
        if failure is None:  # a bug: say so in one line; FOCUSWRAP_DEBUG=1 shows the traceback
            import os

            if os.environ.get("FOCUSWRAP_DEBUG"):
                raise
            print(
                f"focuswrap: internal error: {type(exc).__name__}: {exc} "
                "(please report it; FOCUSWRAP_DEBUG=1 shows the details).",
                file=sys.stderr,
            )
            sys.exit(int(ExitCode.INTERNAL))
        _report_error(failure)
        sys.exit(int(failure.exit_code))


def _report_error(exc: FocuswrapError | Interrupted) -> None:
    from focuswrap.display import failure_lines

    print(f"focuswrap: error: {exc.message}", file=sys.stderr)
    for block in failure_lines(exc, verbose=_verbose):
        print(block, file=sys.stderr)
