"""Runs beyond one fit: the store, the job queue, sessions, artifacts and export, sweeps, the demo."""
