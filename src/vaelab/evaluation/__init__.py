"""Test measures of trained models, and their test-image resamples (the claims' evidence)."""
