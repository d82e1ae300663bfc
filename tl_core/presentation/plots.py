"""Pure plotting functions: run data in, ``plotly.graph_objects.Figure`` out.

Nothing here touches the UI (no streamlit import) or the disk, so every chart a student sees can be built
and checked in a plain unit test. The charts live by family; this module is their index, so a page writes
``plots.transfer_gap(runs)`` without knowing which file draws it:

* ``chart_style``: the shared vocabulary, tolerant readers of run records, layout helpers;
* ``curves``: learning curves (one run live, runs overlaid, one mean curve per mode);
* ``gap_charts``: the transfer gap across modes, labels per class and freeze depths;
* ``run_charts``: one run up close (confusion matrix, class balance, top predictions, block change);
* ``blocks``: the freeze-depth drawing (its geometry apart from its drawing).
"""

from tl_core.presentation.chart_style import WAITING_TEXT, empty_figure, run_label
from tl_core.presentation.curves import learning_curves, mode_curves, overlay_curves
from tl_core.presentation.formatting import (
    FROZEN_FILL,
    FROZEN_LINE,
    HEAD_COLOR,
    MODE_COLORS,
    MODE_LABELS,
    MODE_ORDER,
    format_params,
    format_pct,
    mode_color,
    mode_label,
    tint,
    trainable_summary,
)
from tl_core.presentation.gap_charts import data_efficiency, freeze_sweep, transfer_gap
from tl_core.presentation.run_charts import block_change, class_balance, confusion_matrix, topk_bar

__all__ = [
    "FROZEN_FILL", "FROZEN_LINE", "HEAD_COLOR", "MODE_COLORS", "MODE_LABELS", "MODE_ORDER", "WAITING_TEXT",
    "block_change", "class_balance", "confusion_matrix", "data_efficiency", "empty_figure", "format_params",
    "format_pct", "freeze_sweep", "learning_curves", "mode_color", "mode_curves", "mode_label", "overlay_curves",
    "run_label", "tint", "topk_bar", "trainable_summary", "transfer_gap",
]
