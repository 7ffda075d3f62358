"""The bottom layer: errors, configuration, typed results and manifest, the one model loader."""
