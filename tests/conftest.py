"""Shared test plumbing: where the repo is, and how a missing tool is treated.

Locally a test that needs a system tool (promtool, chromium, root for
namespaces) skips with the reason. CI sets MSGPROBE_REQUIRE_TOOLS=1 after
installing them, and then a missing tool is a failure, never a silent skip.
"""

from __future__ import annotations

import os
import shutil

import pytest

# CI=true too: a netns or container test skipped in CI would hide a broken detector.
REQUIRE_TOOLS = os.environ.get("MSGPROBE_REQUIRE_TOOLS") == "1" or os.environ.get("CI") == "true"


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (Debian package provides it; .ci/run installs it)"
        if REQUIRE_TOOLS:
            pytest.fail(message)
        pytest.skip(message)
    return path


def require_root(reason: str) -> None:
    if os.geteuid() != 0:
        message = f"needs root: {reason}"
        if REQUIRE_TOOLS:
            pytest.fail(message)
        pytest.skip(message)


def require_netns(*, iptables: bool = True) -> None:
    """Called before anything is created: root, ``ip`` and, for a censor, ``iptables``."""
    require_root("creates network namespaces" + (" and iptables rules" if iptables else ""))
    require_tool("ip")
    if iptables:
        require_tool("iptables")
