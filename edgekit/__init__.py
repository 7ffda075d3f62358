"""edgekit: export small language models to on-device targets and measure how they run."""

__version__ = "0.1.0"
