"""Start Transfer Lab warm: `python -m ui.launch [streamlit options]`, e.g. `--server.port 8501`.

`make run`, the browser tests and bench/bench_app_start.py all start the app this way. A teacher who clicked
the classroom demo the moment the page appeared waited 10-13 s for the first curve point: the server was still
importing torch and torchvision and warming the demo up while the demo trained. Here the imports, the demo's
warm-up (its data, its weights, one forward pass) and the description of every backbone happen before
Streamlit starts listening, so a server that answers is a warm server; the run workers (worker processes,
tl_core/runs/runners/processes.py) start first and warm themselves up meanwhile. Then Streamlit's own command line runs
`app.py` in this same process.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

APP = Path(__file__).resolve().parents[1] / "app.py"


def warm() -> float:
    """Import what the pages import and warm the demo up; returns the seconds it took."""
    start = time.perf_counter()
    import pandas  # noqa: F401  the pages' own imports, once
    import plotly.graph_objects  # noqa: F401

    from tl_core.models import backbones  # noqa: F401
    from tl_core.inputs import data
    from tl_core.presentation import plots, report  # noqa: F401
    from tl_core.engine import training  # noqa: F401
    from ui import services, views, warmup  # noqa: F401

    services.manager()  # the run workers (TL_RUNNER=local) start now and warm up beside this process
    warmup.warm_demo()  # marks the process warm: the app's background warm-up skips this step
    data.list_builtins()  # Home and Data describe the built-in sets (reading the 37k-text one takes a while)
    # Every backbone's description too (the Model page lists them; the first text one imports transformers):
    # done later, in the app's background warm-up, it held the interpreter for seconds just as a teacher
    # clicked the demo on a fresh server.
    for family in ("vision", "text"):
        for name in backbones.list_names(family):
            try:
                backbones.describe(name)
            except Exception as err:  # noqa: BLE001 - the Model page reports it when it matters
                print(f"Transfer Lab: could not describe {name}: {err}", file=sys.stderr)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    from tl_core.errors import UserError

    try:
        seconds = warm()
    except UserError as err:  # e.g. TL_RUNNER=ray without TL_RAY_ADDRESS: one line, not a traceback
        print(f"Transfer Lab: {err}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
    print(f"Transfer Lab: warmed up in {seconds:.1f} s; starting the server", file=sys.stderr, flush=True)
    from streamlit.web.cli import main as streamlit_main

    sys.argv = ["streamlit", "run", str(APP), *args]
    streamlit_main(prog_name="streamlit")


if __name__ == "__main__":
    main()
