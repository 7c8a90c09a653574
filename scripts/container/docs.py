"""The volunteer's setup commands, as the documentation gives them.

Both places a volunteer reads them (the header of
deploy/volunteer/compose.yaml and deploy/README.md, "Volunteer") are parsed
and run as written, so that what the docs say is what is tested: the CI
stack makes its token file with them, and tests/deploy/test_file_modes.py
checks that the files they leave are readable by the containers' users.
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VOLUNTEER = REPO / "deploy" / "volunteer"
README = REPO / "deploy" / "README.md"
COMPOSE = VOLUNTEER / "compose.yaml"

# Documented placeholders for the token the watchdogs hand out.
TOKEN_PLACEHOLDERS = ("THE-TOKEN", "TOKEN")


def _runnable(lines: list[str]) -> list[str]:
    """Drop what a setup run must not do here (start the stack: the caller
    does that its own way) and lines that are only comments."""
    return [ln for ln in lines if ln.strip() and not ln.lstrip().startswith(("#", "docker "))]


def compose_header_commands(compose: Path = COMPOSE) -> list[str]:
    """The indented commands in the compose file's leading comment."""
    out = []
    for line in compose.read_text().splitlines():
        if not line.startswith("#"):
            break
        if line.startswith("#   "):
            out.append(line[4:].strip())
    return _runnable(out)


def readme_sections(readme: Path = README) -> dict[str, str]:
    """### sections of deploy/README.md by title."""
    parts = re.split(r"^### (.+)$", readme.read_text(), flags=re.MULTILINE)
    return {title.strip(): body for title, body in zip(parts[1::2], parts[2::2], strict=True)}


def readme_commands(readme: Path = README) -> list[str]:
    """Every ```sh block of "With the compose file", in order."""
    body = readme_sections(readme)["With the compose file (probe + agent)"]
    lines: list[str] = []
    for block in re.findall(r"```sh\n(.*?)```", body, flags=re.DOTALL):
        lines += block.splitlines()
    return _runnable(lines)


def as_script(commands: list[str], token: str) -> str:
    """A bash script running `commands` with the token filled in, under the
    strictest umask a volunteer may have."""
    body = []
    for command in commands:
        for placeholder in TOKEN_PLACEHOLDERS:
            command = command.replace(f"'{placeholder}'", f"'{token}'")
        body.append(command)
    return "set -euo pipefail\numask 077\n" + "\n".join(body) + "\n"
