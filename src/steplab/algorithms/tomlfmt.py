"""Writing TOML values (the TOML spec, toml.io/en/v1.0.0): Python has ``tomllib`` to read
TOML but nothing to write it, and an algorithm spec needs only scalars, arrays and inline
tables.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from steplab.errors import SpecError


def toml_string(s: str) -> str:
    """A TOML basic string: JSON's escapes are TOML's, but TOML takes non-ASCII characters as
    they are (JSON's surrogate pairs are not TOML) and needs DEL escaped."""
    return json.dumps(s, ensure_ascii=False).replace("\x7f", "\\u007f")


def toml_key(k: str) -> str:
    """``k`` bare when TOML allows it, else quoted."""
    return k if k and all(c.isalnum() or c in "_-" for c in k) and k.isascii() else toml_string(k)


def toml_value(v: Any) -> str:
    """``v`` (a JSON-able value, with ``nan``/``inf``) as a TOML value; inline tables for mappings."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return toml_string(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return "{ " + ", ".join(f"{toml_key(k)} = {toml_value(x)}" for k, x in v.items()) + " }"
    raise SpecError(f"cannot write {v!r} to TOML")
