"""Tables a projector shows: an empty cell reads as an en dash (not Streamlit's grey "None"), and a text column is
as wide as its longest value, so nothing is cut off.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

EMPTY = "\u2013"  # an en dash
#: About one character of the table's font, in pixels, and the cell's padding.
CHAR_PX, PAD_PX = 7, 20


def is_missing(value: Any) -> bool:
    try:
        return value is None or bool(pd.isna(value))
    except (TypeError, ValueError):  # a list or an array: a value
        return False


def cell_text(value: Any, fmt: str | None = None, empty: str = EMPTY) -> str:
    """One cell as text: `fmt` a printf format ('%.1f%%'), `empty` for a missing value."""
    if is_missing(value) or value == "":
        return empty
    if fmt:
        try:
            return fmt % value
        except (TypeError, ValueError):
            pass
    return str(value)


def dash_missing(table: pd.DataFrame, column_config: Mapping[str, Any],
                 empty: Mapping[str, str] | None = None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The table with every column that has a missing value turned into text (each value in its column's number
    format, a missing one as an en dash or the column's word in `empty`, e.g. labels/class: 'all'), and the column
    configuration to show it with: those columns become text columns with the same label, width and help."""
    table, config = table.copy(), dict(column_config)
    for col in table.columns:
        values = table[col]
        if not any(is_missing(v) or (isinstance(v, str) and v == "") for v in values):
            continue
        spec = dict(config.get(col) or {})
        fmt = (spec.get("type_config") or {}).get("format")
        if fmt is not None and not isinstance(fmt, str):
            fmt = None
        table[col] = [cell_text(v, fmt, (empty or {}).get(col, EMPTY)) for v in values]
        if spec:
            if (spec.get("type_config") or {}).get("type") == "number":
                spec["alignment"] = spec.get("alignment") or "right"  # numbers stay lined up on the right
            spec["type_config"] = {"type": "text"}
            config[col] = spec
    return table, config


def text_width(values: Iterable[Any], least: int = 60, most: int = 240) -> int:
    """Pixels for a text column that shows its longest value whole (between `least` and `most`)."""
    longest = max((len(str(v)) for v in values), default=0)
    return max(least, min(most, CHAR_PX * longest + PAD_PX))
