"""A CSV export (Weights & Biases "Download CSV", a spreadsheet, ``pandas.to_csv``) ->
a steplab trial. Standard library only (``csv.DictReader``,
https://docs.python.org/3/library/csv.html), so it needs no extra.

::

    steplab import csv history.csv --step _step --loss train/loss --lr lr --grad-norm grad_norm

One row per logged step; an empty cell (W&B leaves one where a metric was not logged at that
step) means "not recorded". A cell that is not a number, a step that is not an integer or
that does not increase is an error with its line number, and nothing is imported.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path

from steplab.errors import SourceError
from steplab.integrations import traces
from steplab.store import Store

__all__ = ["read_columns", "import_csv"]


def _number(text: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise SourceError(f"{where}: {text!r} is not a number") from None
    return value


def read_columns(path: str | Path, step: str, columns: dict[str, str], *,
                 time: str | None = None) -> dict[str, traces.Series]:
    """Series ``{key: Series}`` for ``columns`` (``key -> CSV column``) of the CSV file
    ``path``, indexed by the integer column ``step`` (rows where a column is empty are left
    out of that series); ``time`` is an optional column of seconds."""
    p = Path(path)
    if not p.is_file():
        raise SourceError(f"CSV file {str(p)!r} does not exist")
    try:
        with open(p, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            if not header:
                raise SourceError(f"CSV file {str(p)!r} is empty: nothing to import")
            wanted = {"step": step, **columns, **({"time": time} if time else {})}
            missing = [c for c in wanted.values() if c not in header]
            if missing:
                shown = ", ".join(h if h.isprintable() else repr(h) for h in header[:12])
                raise SourceError(f"CSV file {str(p)!r} has no column {missing[0]!r} "
                                  f"(it has: {shown}{', ...' if len(header) > 12 else ''})")
            out = {k: traces.Series(c, [], [], [] if time else None) for k, c in columns.items()}
            n = 0
            for n, row in enumerate(reader, start=2):  # line 1 is the header
                if None in row:
                    raise SourceError(f"{p}:{n}: the row has more cells than the header")
                raw = (row.get(step) or "").strip()
                if not raw:
                    raise SourceError(f"{p}:{n}: no step in column {step!r}")
                s = _number(raw, f"{p}:{n} column {step!r}")
                if not math.isfinite(s) or s != int(s):
                    raise SourceError(f"{p}:{n} column {step!r}: step {raw!r} is not an integer")
                t = None
                if time:
                    cell = (row.get(time) or "").strip()
                    t = _number(cell, f"{p}:{n} column {time!r}") if cell else math.nan
                for key, col in columns.items():
                    cell = (row.get(col) or "").strip()
                    if not cell:
                        continue
                    series = out[key]
                    series.steps.append(int(s))
                    series.values.append(_number(cell, f"{p}:{n} column {col!r}"))
                    if series.times is not None:
                        series.times.append(t if t is not None else math.nan)
    except UnicodeDecodeError as e:
        raise SourceError(f"CSV file {str(p)!r} is not UTF-8 text ({e.reason}): save it as UTF-8 CSV") from None
    except csv.Error as e:
        raise SourceError(f"CSV file {str(p)!r} is malformed ({e})") from None
    except OSError as e:
        raise SourceError(f"cannot read CSV file {str(p)!r} ({e.strerror or e})") from None
    if n == 0:
        raise SourceError(f"CSV file {str(p)!r} has a header but no rows: nothing to import")
    return out


def import_csv(
    store: Store,
    path: str | Path,
    *,
    step: str,
    loss: str,
    lr: str | None = None,
    grad_norm: str | None = None,
    evals: Sequence[str] = (),
    time: str | None = None,
    name: str | None = None,
    optimizer: str | None = None,
    offset: int = 0,
) -> int:
    """Import a CSV file as a finished trial (one transaction) and return its id.

    Args:
        step: the column of update numbers (W&B: ``_step``).
        loss, lr, grad_norm: the columns of the training loss, learning rate and global l2
            gradient norm (before clipping).
        evals: columns of evaluation metrics (``val_loss`` is stored as
            ``validation/loss``; a name without a ``val``/``eval``/``test`` prefix goes under
            ``validation/``).
        time: a column of seconds (W&B: ``_runtime``), else trace times are unknown.
        name: the trial's label (default: the file name).
        optimizer: lets ``steplab refine --norm auto`` pick l1 or l2.
        offset: added to every step.
    """
    columns = {"loss": loss, **({"lr": lr} if lr else {}), **({"grad_norm": grad_norm} if grad_norm else {})}
    eval_keys = {f"eval:{c}": c for c in evals}
    read = read_columns(path, step, {**columns, **eval_keys}, time=time)
    eval_series = []
    for key, col in eval_keys.items():
        found = traces.eval_metric(col)
        metric = found[1] if found else f"validation/{col}"
        s = read[key]
        eval_series.append(traces.Series(metric, s.steps, s.values, s.times))
    source = f"CSV file {str(path)!r}"
    for key, col in columns.items():
        if not read[key].steps and key != "loss":
            raise SourceError(f"{source}: column {col!r} ({key}) is empty in every row")
    built = traces.build_trial(
        source=source, variant="csv", columns={k: read[k] for k in columns}, evals=eval_series,
        optimizer=optimizer, offset=offset,
        origin={"path": str(Path(path).resolve()), "columns": {"step": step, **columns}},
        start_time=0.0 if time else None,
    )
    return traces.save_trial(store, built, name=name or Path(path).name)
