"""``steplab db info`` and ``steplab db upgrade``: what a results database holds, and
bringing an older one to this steplab's schema (the work is in ``steplab.store.admin``).
"""

from __future__ import annotations

import typer

from steplab.cli.common import DbOption, JsonOption, console, emit, friendly, output_format

db_app = typer.Typer(help="Inspect or upgrade a results database (SQLite file or PostgreSQL URL).",
                     no_args_is_help=True)


@db_app.command("info")
@friendly
def db_info(db: DbOption = None, as_json: JsonOption = False) -> None:
    """Backend, schema version, studies, trials by status and the running trials' claims."""
    from steplab.store import admin

    info = admin.info(db)
    if emit(output_format(as_json), info):
        return
    version = info["schema_version"]
    state = ("current" if version == info["steplab_schema"]
             else f"older: run `steplab db upgrade --db {info['url']}`")
    console.print(f"database  {info['url']} ({info['backend']})", highlight=False)
    console.print(f"schema    version {version} ({state}); this steplab uses {info['steplab_schema']}",
                  highlight=False)
    if info["size_bytes"] is not None:
        console.print(f"size      {info['size_bytes'] / 1e6:.1f} MB", highlight=False)
    counts = ", ".join(f"{n} {s}" for s, n in sorted(info["trials"].items())) or "none"
    console.print(f"contents  {info['studies']} studies; trials: {counts}", highlight=False)
    for c in info["running"]:
        age = "never" if c["heartbeat_age_s"] is None else f"{c['heartbeat_age_s']:.0f} s ago"
        console.print(f"  running trial {c['id']} (study {c['study_id']}) by {c['worker'] or 'unknown'}, "
                      f"last heartbeat {age}: {'dead (taken over on resume)' if c['dead'] else 'alive'}",
                      highlight=False)


@db_app.command("upgrade")
@friendly
def db_upgrade(db: DbOption = None) -> None:
    """Migrate the database to this steplab's schema, in one transaction (back it up first)."""
    from steplab.store import admin

    before, applied = admin.upgrade(db)
    if not applied:
        console.print(f"already at schema version {before}: nothing to do", highlight=False)
    else:
        console.print(f"upgraded from schema version {before} to {applied[-1]}", highlight=False)
