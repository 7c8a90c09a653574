"""A simulated censor on loopback, for tests, benchmarks and ``msgprobe demo``.

A lying resolver (``resolver``), a truthful DoH control (``doh``), genuine
servers with a throwaway PKI (``servers``, ``pki``), a DPI middlebox that
resets, stalls or answers on the TLS SNI / HTTP Host (``middlebox``), and
SYN black holes (``blackhole``); ``scenarios`` assembles them into fake
services on 127.0.0.x, ``serve`` runs them in a process of their own.
No root needed, nothing leaves the machine.
"""
