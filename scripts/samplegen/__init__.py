"""The sample invoice generator behind scripts/make_samples.py, one module per idea."""
