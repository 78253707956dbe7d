"""MkDocs hook: the command-line reference, generated from the ``steplab`` typer app.

At build time, the marker ``<!-- steplab-cli-reference -->`` in ``reference/cli.md`` is
replaced by one section per command (walked from ``typer.main.get_command(steplab.cli.app)``):
its help text, usage line, arguments and options with their defaults. So the reference
cannot drift from the commands: a new command or option shows up on the next build.
``tests/test_docs.py`` checks that every command and option is in the generated text.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

MARKER = "<!-- steplab-cli-reference -->"


def _commands(cmd: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every command under ``cmd`` (groups first, then their subcommands), in name order.
    Duck-typed: typer builds click objects, from its own copy of click in recent versions."""
    yield path, cmd
    if hasattr(cmd, "commands"):
        for name in sorted(cmd.commands):
            sub = cmd.commands[name]
            if not sub.hidden:
                yield from _commands(sub, (*path, name))


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def _default(param: Any) -> str:
    if param.default is None or param.default == () or getattr(param, "is_flag", False) and param.default is False:
        return ""
    if callable(param.default):
        return ""
    return f"`{param.default}`"


def _type_name(param: Any, ctx: Any) -> str:
    """The value type as ``--help`` shows it (typer >= 0.20 has ``display_type``; older
    typer hands out click's parameters, whose ``type`` has a ``name``)."""
    if hasattr(param, "display_type"):
        return str(param.display_type(ctx)).strip("<>")
    return str(param.type.name)


def _param_row(param: Any, ctx: Any) -> str:
    names = [*param.opts, *param.secondary_opts]
    if param.param_type_name == "argument":
        shown = f"`{param.name}`"
        kind = _type_name(param, ctx) + " argument" + ("" if param.required else " (optional)")
    else:
        shown = ", ".join(f"`{n}`" for n in names)
        kind = "flag" if getattr(param, "is_flag", False) else _type_name(param, ctx)
        if param.multiple:
            kind += ", repeatable"
        if param.required:
            kind += ", required"
    help_text = _cell(getattr(param, "help", None) or "")
    return f"| {shown} | {_cell(kind)} | {_default(param)} | {help_text} |"


def render(app: Any = None) -> str:
    """Markdown for every command of ``app`` (default: ``steplab.cli.app``)."""
    import typer

    if app is None:
        from steplab.cli import app
    root = typer.main.get_command(app)
    out: list[str] = []
    for path, cmd in _commands(root, ("steplab",)):
        ctx = cmd.context_class(cmd, info_name=path[-1])
        usage = " ".join((*path, *cmd.collect_usage_pieces(ctx)))
        level = "#" * min(len(path) + 1, 4)
        out.append(f"{level} `{' '.join(path)}`\n")
        if cmd.help:
            out.append(cmd.help.split("\f")[0].strip() + "\n")
        out.append(f"```text\n{usage}\n```\n")
        params = [p for p in cmd.params if not getattr(p, "hidden", False)]
        if params:
            out.append("| name | kind | default | meaning |")
            out.append("| --- | --- | --- | --- |")
            out.extend(_param_row(p, ctx) for p in params)
            out.append("")
        if hasattr(cmd, "commands"):
            subs = [n for n in sorted(cmd.commands) if not cmd.commands[n].hidden]
            out.append("Commands: " + ", ".join(f"`{n}`" for n in subs) + ".\n")
    return "\n".join(out)


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    """Replace the marker with the generated reference (MkDocs event)."""
    if MARKER in markdown:
        return markdown.replace(MARKER, render())
    return markdown
