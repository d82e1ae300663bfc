"""Streamlit helpers shared by the pages: session state, singletons and job views.

tl_core never imports streamlit; everything that does lives here or in app_pages/.
"""
