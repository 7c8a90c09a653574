"""Tests through a real iptables middlebox in network namespaces (root only)."""
