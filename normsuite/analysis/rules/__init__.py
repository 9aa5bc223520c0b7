"""normsuite.analysis.rules."""
