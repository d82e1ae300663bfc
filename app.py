"""Transfer Lab: the Streamlit entry point. `python -m ui.launch` (or `streamlit run app.py`)

Only registers the pages, the per-browser session id and the session's kept settings; the pages do the rest.
Kept light: torch is imported by the pages that need it, not here. The navigation sits at the top, so every
page has the whole width of a projector (a sidebar would take 300 of its 1280 pixels from the tables).
"""

from pathlib import Path

import streamlit as st

from ui import session_id, settings, warmup

#: A local image: a Material icon as the page icon makes the browser fetch its glyph from a font CDN on every page
#: load (an error in a classroom without internet).
ICON = Path(__file__).resolve().parent / "assets" / "icon.png"


def main() -> None:
    st.set_page_config(page_title="Transfer Lab", page_icon=str(ICON), layout="wide")

    owner = session_id.ensure_owner()
    settings.restore_session()  # a refresh or the session URL elsewhere: settings back before any widget is drawn

    pages = [
        st.Page("app_pages/home.py", title="Home", icon=":material/home:", default=True),
        st.Page("app_pages/data.py", title="Data", icon=":material/photo_library:"),
        st.Page("app_pages/model.py", title="Model", icon=":material/account_tree:"),
        st.Page("app_pages/train.py", title="Train", icon=":material/model_training:"),
        st.Page("app_pages/compare.py", title="Compare", icon=":material/leaderboard:"),
        st.Page("app_pages/inspect.py", title="Inspect", icon=":material/troubleshoot:"),
        st.Page("app_pages/explain.py", title="Explain", icon=":material/visibility:"),
        st.Page("app_pages/predict.py", title="Predict", icon=":material/online_prediction:"),
        st.Page("app_pages/lesson.py", title="Lesson", icon=":material/school:"),
    ]
    page = st.navigation(pages, position="top")
    body = st.container()  # created first, so the page sits above the footer even when it stops early (st.stop)
    st.divider()
    st.caption(f"Session `{owner}` — keep this page's URL: it brings back your settings, your upload and your runs "
               "after a refresh, in another tab or on another computer.")
    with body:
        page.run()

    warmup.start_warmup()  # under a plain `streamlit run` (the launcher has started it already): warm in the background


# A worker process spawned while this script runs (Streamlit makes the running script the `__main__` module, and a
# spawned process imports `__main__` again, as `__mp_main__`) must not start a second app inside the worker.
if __name__ != "__mp_main__":
    main()
