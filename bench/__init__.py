"""cw's benchmark: speed and scaling targets, proven as ratios measured in one run."""
