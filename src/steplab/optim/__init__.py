"""Optimizers by name from well-kept packages, train/eval modes, Polyak-type steps."""
