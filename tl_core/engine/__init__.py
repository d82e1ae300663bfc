"""Training: the run plan, the loop, the head fit, precise BatchNorm, health, metrics, similarity."""
