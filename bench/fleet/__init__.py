"""The fleet load test: 1,000 simulated vantages' remote writes into
VictoriaMetrics on loopback (``python -m bench.fleet``; see __main__.py)."""
