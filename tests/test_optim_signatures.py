"""The torch-free signature table (:mod:`steplab.optim.signature_table`) equals what the
installed optimizer classes declare, so specs checked without torch are checked against the
real constructors. After adding a built-in optimizer or upgrading a package, rewrite the
table with ``python tests/test_optim_signatures.py --write``."""

from __future__ import annotations

import enum
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from steplab.optim import classes, registry
from steplab.optim.catalog import BUILTIN
from steplab.optim.signature_table import SIGNATURES

TABLE = Path(__file__).resolve().parents[1] / "src" / "steplab" / "optim" / "signature_table.py"


def _plain(v: Any) -> Any:
    """A default as the table stores it: enum members by value, tuples as tuples."""
    if isinstance(v, enum.Enum):
        return v.value
    if isinstance(v, (list, tuple)):
        return tuple(_plain(x) for x in v)
    return v


def _live() -> dict[str, tuple[str, dict[str, Any]]]:
    out = {}
    for entry in BUILTIN:
        named, only_var = classes.class_signature(entry)
        assert not only_var, f"{entry.name}: a **kwargs-only class cannot be tabled"
        out[entry.name] = (entry.target, {k: _plain(v) for k, v in named.items()})
    return out


def _literal(v: Any) -> str:
    if v is registry.REQUIRED:
        return "REQUIRED"
    if isinstance(v, float) and math.isinf(v):
        return "math.inf" if v > 0 else "-math.inf"
    if isinstance(v, tuple):
        inner = ", ".join(_literal(x) for x in v)
        return f"({inner},)" if len(v) == 1 else f"({inner})"
    assert v is None or isinstance(v, (bool, int, float, str)), f"cannot table default {v!r}"
    return repr(v)


def render(table: dict[str, tuple[str, dict[str, Any]]]) -> str:
    lines = ['"""Constructor signatures of the built-in optimizers (:mod:`steplab.optim.catalog`): target',
             "and {parameter: default}, so :mod:`steplab.optim.registry` checks kwargs without importing",
             "torch. Written by ``python tests/test_optim_signatures.py --write`` from the installed",
             'classes; the test checks it against them. Do not edit by hand."""',
             "", "import math", "from inspect import Parameter", "", "REQUIRED = Parameter.empty", "",
             "SIGNATURES = {"]
    for name, (target, params) in sorted(table.items()):
        lines.append(f"    {name!r}: ({target!r}, {{")
        lines.extend(f"        {k!r}: {_literal(v)}," for k, v in params.items())
        lines.append("    }),")
    lines.append("}")
    return "\n".join(lines) + "\n"


def test_table_matches_the_installed_classes() -> None:
    live = _live()
    stale = sorted(set(live) ^ set(SIGNATURES))
    assert not stale, f"table rows differ for {stale}: run python tests/test_optim_signatures.py --write"
    for name, (target, params) in live.items():
        row_target, row_params = SIGNATURES[name]
        assert row_target == target, name
        assert list(row_params) == list(params), f"{name}: parameter names differ; rewrite the table"
        for k, v in params.items():
            got = row_params[k]
            assert got == v or (isinstance(v, float) and math.isnan(v) and math.isnan(got)), (name, k, got, v)


def test_builtin_lookups_use_the_table_and_others_import(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = classes.class_signature
    monkeypatch.setattr(classes, "class_signature", lambda e: calls.append(e.name) or real(e))
    assert registry.default_kwargs("adamw")["betas"] == (0.9, 0.999)
    assert registry.resolve_kwargs("sgd", {"beta1": 0.8}) == {"momentum": 0.8}
    assert calls == []
    assert registry.resolve_kwargs("torch.optim:Adagrad", {"lr_decay": 0.1}) == {"lr_decay": 0.1}
    assert calls == ["torch.optim:Adagrad"]


def test_a_spec_and_a_label_need_no_torch(tmp_path: Path) -> None:
    code = ("import sys\n"
            "from steplab.algorithms.baselines import builtins\n"
            "from steplab.algorithms.labels import run_label\n"
            "from steplab.results import TrialSpec\n"
            "algo = builtins()['adamw-cosine'].with_hyperparameters({'lr': 0.002, 'beta2': 0.95})\n"
            "spec = TrialSpec('logreg', 'base', 'adamw-cosine', algo.to_dict(), {}, 0, 100)\n"
            "print(run_label(spec))\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "adamw-cosine lr=0.002 beta2=0.95"


if __name__ == "__main__" and "--write" in sys.argv:
    TABLE.write_text(render(_live()))
    print(f"wrote {TABLE}")
