"""Runs as people read them: sentences (report) and plotly figures (plots)."""
