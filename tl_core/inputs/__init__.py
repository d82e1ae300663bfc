"""What a run learns from: built-in sets, uploads (zips, folders, CSV/TSV) read safely, splits, shifts."""
