"""normsuite.training."""
