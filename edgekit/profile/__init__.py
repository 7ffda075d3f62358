"""Profiling: the measurement protocol, run on a device through its transport, and its metrics."""
