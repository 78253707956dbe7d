"""The HTML of every report, shared by the benchmark report and the run report: the page shell
(inline CSS, no scripts, no external URLs), escaping of strings from the data, table cells and
figures embedded as base64 PNGs, so one file is the whole report."""

from __future__ import annotations

from html import escape as _html_escape
from typing import Any

__all__ = ["CSS", "cell", "escape", "image", "page"]

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2330;
  max-width:1240px;margin:0 auto;padding:24px 28px 60px;line-height:1.45;background:#fff}
h1{font-size:1.6em;margin:0 0 4px}h2{font-size:1.25em;margin:34px 0 8px;padding-bottom:4px;
  border-bottom:1px solid #dde2ea}h3{font-size:1.05em;margin:24px 0 6px}
.sub{color:#5a6375;margin:0 0 14px}
.spec{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;background:#f5f7fa;
  border:1px solid #e2e6ee;border-radius:6px;padding:10px 14px;font-size:.92em}
.spec dt{color:#5a6375}.spec dd{margin:0}
.howto{background:#fbfaf3;border-left:4px solid #e0c65a;padding:10px 14px;font-size:.93em}
.howto p{margin:.3em 0}
table{border-collapse:collapse;font-size:.9em;margin:8px 0 4px}
th,td{padding:4px 10px;border-bottom:1px solid #e6e9ef;text-align:left;vertical-align:top}
th{background:#f0f3f7;font-weight:600}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
tr:nth-child(even) td{background:#fafbfc}
.best{font-weight:700}.miss{color:#9aa1ad}
.bar{display:inline-block;height:9px;background:#4c78a8;border-radius:2px;vertical-align:middle;
  margin-right:6px}
.swatch{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:6px;
  vertical-align:middle}
.status{padding:1px 6px;border-radius:8px;font-size:.85em;white-space:nowrap}
.s-reached{background:#dff3e4;color:#1d6b35}.s-budget{background:#eef0f4;color:#4a5263}
.s-diverged{background:#fde7d9;color:#9a3f0a}.s-failed{background:#fbdada;color:#9b1c1c}
.s-pruned{background:#ece6f7;color:#5a3a8c}.s-running{background:#e3eefc;color:#1e4f91}
.scroll{overflow-x:auto}.trials{font-size:.8em}.trials td.hp{font-family:ui-monospace,monospace;
  font-size:.95em;max-width:380px}.trials td.msg{max-width:320px;word-break:break-word}
img{max-width:100%;height:auto}.note{color:#5a6375;font-size:.88em}
code{background:#f0f3f7;padding:0 3px;border-radius:3px}
"""


def escape(value: Any) -> str:
    """Escape a value from the data for HTML text or attributes.

    >>> escape('<b a="1">')
    '&lt;b a=&quot;1&quot;&gt;'
    """
    return _html_escape(str(value), quote=True)


def cell(text: str, cls: str = "") -> str:
    """A ``<td>`` holding ``text`` (already HTML), with CSS class ``cls`` (``"n"``: a number,
    right-aligned; ``"miss"``: greyed out)."""
    return f'<td class="{cls}">{text}</td>' if cls else f"<td>{text}</td>"


def image(png_base64: str, alt: str) -> str:
    """An ``<img>`` with the PNG inline as a data URL (``style.png_base64``)."""
    return f'<img src="data:image/png;base64,{png_base64}" alt="{escape(alt)}">'


def page(title: str, body: str) -> str:
    """The whole HTML document: ``title`` (escaped here) and ``body`` (already HTML) with the
    shared CSS inline."""
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{escape(title)}</title><style>{CSS}</style></head>\n<body>\n{body}\n</body></html>\n"
    )
