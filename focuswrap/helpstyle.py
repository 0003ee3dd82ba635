"""--help in plain words: what Typer prints, without the programmer's types.

Typer (0.2x) adds a column of programmer's types to --help (``<bool>``,
``<list[Path]>``, ``<float range>``), writes a required list of photos as
``{PHOTO...}...`` in the usage line and appends ``[x>=1]`` to a bounded option.
Here an option shows its metavar (FILE, N, SECONDS) or nothing for an on/off
switch, an argument its metavar, and a limit is said in the option's own help.

Typer has no setting for this, so three of its display methods are replaced on
each parameter object (never on its classes); a method this Typer lacks is left
alone, and an error while patching leaves Typer's own help.  Only the help text
changes, never what the command line does (``tests/test_package_cli.py`` checks
the help as a user reads it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import typer
    from typer._click.core import Command, Context


def command(app: typer.Typer) -> Command:
    """``app`` as Click runs it, with plain-words help where this Typer allows it."""
    import typer.main

    built = typer.main.get_command(app)
    try:
        _plain(built, None)
    except (ImportError, AttributeError, TypeError):  # another Typer: its own help, unchanged
        pass
    return built


def _plain(command: Command, parent: Context | None) -> None:
    """Plain help for ``command`` and every command below it."""
    from typer import _click
    from typer.core import TyperArgument, TyperOption

    ctx = (
        _click.Context(command, parent=parent)
        if parent is not None
        else _click.Context(command, **(command.context_settings or {}))
    )
    params = list(command.params)
    helper = command.get_help_option(ctx)
    if helper is not None:
        params.append(helper)
    for param in params:
        if isinstance(param, TyperArgument):
            name = param.metavar or (param.name or "").upper()
            _replace(param, "display_type_rich", lambda ctx: None)
            _replace(param, "_usage_display_name", lambda name=name: name)
        elif isinstance(param, TyperOption):
            _replace(param, "_get_number_range_help_str", lambda: None)
            if param.is_flag or not param.metavar:
                _replace(param, "display_type_rich", lambda ctx: None)
    subcommands: dict[str, Command] = getattr(command, "commands", {})
    for sub in subcommands.values():
        _plain(sub, ctx)


def _replace(param: object, method: str, plain: object) -> None:
    """Replace Typer's ``method`` on this one parameter object, if this Typer has it."""
    if hasattr(param, method):
        setattr(param, method, plain)
