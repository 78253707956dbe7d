"""Pure functions over traces: scoring, refinement, bounds, loss-curve laws, sensitivity and continual metrics. Nothing here trains."""
