"""Transfer Lab: the Streamlit entry point. `streamlit run app.py`

Only registers the pages and the per-browser session id; the pages do the rest.
Kept light: torch is imported by the pages that need it, not here.
"""

import streamlit as st

from ui import state

st.set_page_config(page_title="Transfer Lab", page_icon="🧪", layout="wide")

owner = state.ensure_owner()

pages = [
    st.Page("app_pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("app_pages/data.py", title="Data", icon=":material/photo_library:"),
    st.Page("app_pages/model.py", title="Model", icon=":material/account_tree:"),
    st.Page("app_pages/train.py", title="Train", icon=":material/model_training:"),
    st.Page("app_pages/compare.py", title="Compare", icon=":material/leaderboard:"),
    st.Page("app_pages/predict.py", title="Predict", icon=":material/online_prediction:"),
]
page = st.navigation(pages)

with st.sidebar:
    st.caption(f"Session `{owner}` — keep this page's URL to come back to your runs.")

page.run()

state.start_warmup()  # after the page is drawn: describe the backbones in the background
