"""Backbones: the registry, their weights (bundled, cached or downloaded) and the block view that freezing reads."""
