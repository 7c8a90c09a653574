"""Measurement: I/O that records facts. Nothing here decides "blocked"."""
