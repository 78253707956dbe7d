"""The documentation site (mkdocs.yml, docs/): it builds with warnings as errors, the CLI
reference is generated from the commands and misses none, every page is in the navigation,
one tutorial per capability exists, and the built pages need nothing from the internet.
The pages in a real browser: tests/test_browser.py."""

from __future__ import annotations

import importlib.util
import re

import typer
from _docs_site import ROOT, build_site, page_links

DOCS = ROOT / "docs"
TUTORIALS = ("benchmark", "workload", "refine", "predict", "tune", "continual", "integrations", "scale-out")


def _hook(name: str):
    spec = importlib.util.spec_from_file_location(name, DOCS / "hooks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _walk(cmd, path):
    yield path, cmd
    for name, sub in getattr(cmd, "commands", {}).items():
        yield from _walk(sub, (*path, name))


def test_cli_reference_lists_every_command_and_option():
    from steplab.cli import app

    text = _hook("cli_reference").render()
    root = typer.main.get_command(app)
    walked = list(_walk(root, ("steplab",)))
    assert len(walked) > 30
    for path, cmd in walked:
        assert f"`{' '.join(path)}`\n" in text, path
        for param in cmd.params:
            for opt in [*param.opts, *param.secondary_opts]:
                shown = opt if opt.startswith("-") else param.name
                assert f"`{shown}`" in text, (path, opt)
    # a table row per option: `steplab run --lr` documented with its type and help
    run = text.split("### `steplab run`\n", 1)[1].split("\n### ", 1)[0]
    assert re.search(r"^\| `--lr` \| float \|  \| Peak learning rate\. \|$", run, re.M), run


def test_fence_doctests_wraps_doctests_only():
    fence = _hook("griffe_doctests").fence_doctests
    text = "Summary.\n\n>>> f(0), f(1)\n[1.0, 0.5]\n\nMore text.\n```\n>>> kept\n```"
    assert fence(text) == ("Summary.\n\n```pycon\n>>> f(0), f(1)\n[1.0, 0.5]\n```\n\nMore text.\n"
                           "```\n>>> kept\n```")
    assert fence("  Args:\n  >>> x\n  1") == "  Args:\n\n  ```pycon\n  >>> x\n  1\n  ```"


def test_every_page_is_in_the_nav_and_every_capability_has_a_tutorial():
    nav = (ROOT / "mkdocs.yml").read_text()
    pages = sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md"))
    assert [p for p in pages if f": {p}\n" not in nav] == []
    for name in TUTORIALS:
        assert f"tutorials/{name}.md" in pages


def test_site_builds_strict_and_needs_no_network():
    site, log = build_site()
    assert "WARNING" not in log, log
    for name in ("index.html", "getting-started/index.html", "formulas/index.html",
                 "reference/cli/index.html", "reference/api/schedules/index.html"):
        assert (site / name).exists(), name
    # the generated CLI reference and the API reference from the docstrings are in the pages
    cli = (site / "reference/cli/index.html").read_text()
    assert "steplab runs list" in cli and "--no-stop-at-target" in cli
    api = (site / "reference/api/schedules/index.html").read_text()
    assert "cosine_schedule" in api and "Loshchilov" in api
    # no stylesheet, script, font or image from another host (links to papers are fine)
    for page in site.rglob("*.html"):
        html = page.read_text()
        assert "fonts.googleapis" not in html and "fonts.gstatic" not in html, page
        for tag in re.findall(r"<(?:script|link|img)\b[^>]*>", html):
            assert not re.search(r"""(?:src|href)=["']?(?:https?:)?//""", tag) or "rel=canonical" in tag \
                or 'rel="canonical"' in tag, (page, tag)
    assert page_links((site / "index.html").read_text()).urls
