"""The jobs a user runs: train, evaluate, check a gradient, sweep a step size, search."""
