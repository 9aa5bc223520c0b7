"""normsuite.callbacks."""
