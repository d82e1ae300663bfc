"""Words, numbers and colours for runs, without plotly: the CLI, the sentences and the charts share them."""

from __future__ import annotations

import math

from tl_core.config import Mode

#: One colour per mode (Okabe-Ito palette: readable for colour-blind students).
MODE_COLORS: dict[str, str] = {m.value: m.color for m in Mode}  # one place: tl_core.config.Mode
MODE_LABELS: dict[str, str] = {m.value: m.label for m in Mode}

#: Display order of modes in legends and bar groups.
MODE_ORDER: tuple[str, ...] = ("frozen", "finetune", "scratch")

#: Extra colours for modes this module does not know yet (e.g. presets added later).
_FALLBACK_COLORS = ("#009E73", "#D55E00", "#56B4E9", "#F0E442", "#000000")

# block_diagram colours
FROZEN_FILL = "#D9D9D9"
FROZEN_LINE = "#8C8C8C"
HEAD_COLOR = "#009E73"  # bluish green: the new, task-specific head


def mode_color(mode: str | None) -> str:
    """Colour of a mode; unknown modes get a stable fallback colour."""
    if mode in MODE_COLORS:
        return MODE_COLORS[mode]  # type: ignore[index]
    key = sum(ord(c) for c in str(mode))
    return _FALLBACK_COLORS[key % len(_FALLBACK_COLORS)]


def mode_label(mode: str | None) -> str:
    """Human wording of a mode; unknown modes are shown as they are."""
    return MODE_LABELS.get(mode or "", str(mode))


def format_params(n: float | int | None) -> str:
    """Short parameter count: 512, 12.8K, 128K, 3.4M, 86M, 1.2B."""
    if n is None:
        return "?"
    try:
        n = float(n)
    except (TypeError, ValueError):
        return "?"
    if math.isnan(n):
        return "?"
    sign = "-" if n < 0 else ""
    n = abs(n)
    if n < 1000:
        return f"{sign}{int(round(n))}"
    units = (("K", 1e3), ("M", 1e6), ("B", 1e9), ("T", 1e12))
    for i, (suffix, scale) in enumerate(units):
        v = n / scale
        # K keeps a decimal below 100K ("12.8K"); M and above below 10 ("3.4M", "86M").
        decimals = 1 if v < (100 if suffix == "K" else 10) else 0
        v = round(v, decimals)
        if v >= 1000 and i + 1 < len(units):
            continue  # 999_999 -> "1M", not "1000K"
        text = f"{v:.{decimals}f}"
        if text.endswith(".0"):
            text = text[:-2]
        return f"{sign}{text}{suffix}"
    return f"{sign}{n:.3g}"  # pragma: no cover - unreachable


def format_pct(frac: float | None, digits: int = 0) -> str:
    """0.857 -> '86%'."""
    if frac is None:
        return "?"
    return f"{100.0 * frac:.{digits}f}%"


def tint(hex_color: str, amount: float = 0.72) -> str:
    """Mix a colour with white (amount=1 -> white)."""
    h = hex_color.lstrip("#")
    r, g, b = (int(h[i : i + 2], 16) for i in (0, 2, 4))
    r, g, b = (round(c + (255 - c) * amount) for c in (r, g, b))
    return f"#{r:02X}{g:02X}{b:02X}"


def trainable_summary(trainable: int, total: int) -> str:
    """'trainable: 1.2M of 3.4M (35%)'."""
    share = 100.0 * trainable / total if total else 0.0
    share_txt = f"{share:.0f}%" if share >= 10 or share == 0 else f"{share:.1f}%"
    return f"trainable: {format_params(trainable)} of {format_params(total)} ({share_txt})"
