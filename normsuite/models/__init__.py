"""normsuite.models."""
