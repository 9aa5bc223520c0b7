"""normsuite.norms."""
