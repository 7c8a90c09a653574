"""Benchmarks that print figures (``make bench``); never timed unit tests."""
