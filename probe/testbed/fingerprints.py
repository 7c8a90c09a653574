"""The testbed's fingerprints: the built-in list plus the testbed's own overlay.

``fingerprints.yaml`` beside this file names the testbed's simulated
interception root (``LoopbackCensor.interception_ca``), which the shipped
``config/blockpages.yaml`` must not carry. ``BLOCKPAGES`` is what a config
measuring the testbed sets as ``blockpages`` (``LoopbackCensor.config`` does),
and what tests give ``load_fingerprints``.
"""

from __future__ import annotations

from pathlib import Path

from probe.config.nodes import builtin_path

OVERLAY = Path(__file__).with_name("fingerprints.yaml")
BLOCKPAGES = (builtin_path("blockpages.yaml"), OVERLAY)
