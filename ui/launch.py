"""Start Transfer Lab: `python -m ui.launch [streamlit options]`, e.g. `--server.port 8501`.

`make run`, the browser tests and the benchmarks (ui/server_process.py) all start the app this way. The server
listens at once, so a browser opened with it shows the app instead of "connection refused"; the run workers
start first and the warm-up (ui/warmup.py: imports, the demo's data and weights, every backbone described) runs
in the background while the first page is drawn. Home's demo button says it is getting ready until then, so the
first click still trains at once. Then Streamlit's own command line runs `app.py` in this same process.
"""

from __future__ import annotations

import sys
from pathlib import Path

APP = Path(__file__).resolve().parents[1] / "app.py"


def start_warmup() -> None:
    """The job manager (its run workers start now) and the background warm-up; a configuration the runner
    refuses (e.g. TL_RUNNER=ray without TL_RAY_ADDRESS) ends the launcher with one line, not a traceback."""
    from tl_core.errors import UserError
    from ui import services, warmup

    try:
        services.manager()
    except UserError as err:
        print(f"Transfer Lab: {err}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
    warmup.start_warmup()


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    start_warmup()
    print("Transfer Lab: starting the server; warming up in the background", file=sys.stderr, flush=True)
    from streamlit.web.cli import main as streamlit_main

    sys.argv = ["streamlit", "run", str(APP), *args]
    streamlit_main(prog_name="streamlit")


if __name__ == "__main__":
    main()
