"""Many trials: benchmarks, tuning, AutoLRS, sensitivity sweeps, tradeoff curves, continual streams."""
