"""griffe extension for the API reference: show doctests as code.

steplab's docstrings carry doctests (``>>> f(0)`` and its output) in plain paragraphs, as
optax's do. Rendered as Markdown, an output such as ``[1.0, 0.5][0]`` would read as a link
and the lines would run together; this wraps every doctest run (a ``>>>`` line and the
non-blank lines after it) in a ``pycon`` code fence. The source is not changed.
"""

from __future__ import annotations

from typing import Any

import griffe


def fence_doctests(text: str) -> str:
    """``text`` with each doctest run fenced as ```` ```pycon ````; fenced blocks already in
    the text are left as they are."""
    out: list[str] = []
    lines = text.split("\n")
    i, in_fence = 0, False
    while i < len(lines):
        line = lines[i]
        stripped = line.lstrip()
        if stripped.startswith("```"):
            in_fence = not in_fence
        if in_fence or not stripped.startswith(">>>"):
            out.append(line)
            i += 1
            continue
        indent = line[: len(line) - len(stripped)]
        if out and out[-1].strip():
            out.append("")
        out.append(f"{indent}```pycon")
        while i < len(lines) and lines[i].strip():
            out.append(lines[i])
            i += 1
        out.append(f"{indent}```")  # the blank line that ended the run follows as it is
    return "\n".join(out)


class FenceDoctests(griffe.Extension):
    """Fence the doctests of every docstring griffe loads."""

    def on_instance(self, **kwargs: Any) -> None:
        obj = kwargs.get("obj")
        docstring = getattr(obj, "docstring", None)
        if docstring is not None and ">>>" in docstring.value:
            docstring.value = fence_doctests(docstring.value)
