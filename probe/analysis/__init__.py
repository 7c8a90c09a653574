"""Analysis decides: pure functions from observations to verdicts. No I/O, no clock."""
