"""A strict reader of PyYAML's node tree: every problem is kept, as ``file:line: key: reason``.

We walk the node tree rather than the loaded dict so that each message can
name the line; unknown keys are errors, never silently ignored, because a
misspelt ``control_resolvers`` would quietly turn every block into
``unreachable``. The reader collects problems instead of raising, so one run
of ``check-config`` lists them all; the schema that drives it raises one
:class:`ConfigError` at the end.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import TypeVar

import yaml

from probe.config import values

T = TypeVar("T")
E = TypeVar("E", bound=StrEnum)

# How a message names the type it wanted ("expected an integer, got 'many'").
KIND_NAMES: dict[type, str] = {
    int: "an integer",
    str: "a string",
    bool: "true or false",
    float: "a number",
    list: "a list",
}


# Counts and sizes beyond 2^53 are typos, and they would not survive JSON.
MAX_INT = 2**53


class ConfigError(Exception):
    """A config that cannot be used; ``problems`` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def builtin_path(name: str) -> Path:
    return Path(str(resources.files("probe") / "data" / name))


def unknown_key(name: str, allowed: Iterable[str]) -> str:
    """The message for a key outside the schema, with the nearest allowed one if any."""
    close = difflib.get_close_matches(name, list(allowed), n=1)
    return "unknown key" + (f" (did you mean '{close[0]}'?)" if close else "")


def one_of(choices: Iterable[str]) -> str:
    """``a, b or c``: how a message lists the allowed values."""
    names = list(choices)
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


# What constructing one scalar can raise on hostile input: an unknown or
# unsafe tag (ConstructorError), `!!int 0b2` and 5,000-digit integers
# (ValueError), `!!bool maybe` (KeyError), `!!timestamp notadate`
# (AttributeError), `!!binary` of bad base64 (binascii.Error, a ValueError).
CONSTRUCT_ERRORS = (yaml.YAMLError, ValueError, TypeError, KeyError, AttributeError, OverflowError)


class NodeReader:
    """Reads one file's nodes; each method records a problem and returns None on bad input."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.problems: list[str] = []
        self._constructor = yaml.constructor.SafeConstructor()

    def problem(self, node: yaml.Node | None, key: str, message: str) -> None:
        line = f":{node.start_mark.line + 1}" if node is not None else ""
        where = f" {key}:" if key else ""
        self.problems.append(f"{self.path}{line}:{where} {message}")

    def parse(self) -> yaml.Node | None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            self.problems.append(f"{self.path}: cannot read: {exc}")
            return None
        try:
            return yaml.compose(text, Loader=yaml.SafeLoader)
        except RecursionError:
            self.problems.append(f"{self.path}: not valid YAML: nested too deeply")
            return None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = f":{mark.line + 1}" if mark is not None else ""
            reason = getattr(exc, "problem", None) or str(exc)
            self.problems.append(f"{self.path}{line}: not valid YAML: {reason}")
            return None

    def construct(self, node: yaml.ScalarNode, key: str) -> tuple[bool, object]:
        """The scalar's value as YAML types it; (False, None) with a problem recorded if it has none."""
        try:
            return True, self._constructor.construct_object(node)
        except CONSTRUCT_ERRORS as exc:
            tag = node.tag.rsplit(":", 1)[-1] if node.tag else "?"
            # A ConstructorError's `problem` is the reason without the marks (we name the line).
            text = getattr(exc, "problem", None) or str(exc)
            if "Exceeds the limit" in text:
                text = "too many digits"
            detail = " ".join(text.split())[:120]
            self.problem(node, key, f"not a valid {tag} value ({detail})" if detail else f"not a valid {tag}")
            return False, None

    def mapping(self, node: yaml.Node, key: str, allowed: Iterable[str]) -> dict[str, yaml.Node]:
        if not isinstance(node, yaml.MappingNode):
            self.problem(node, key, "expected a mapping")
            return {}
        allowed = set(allowed)
        out: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            name = str(key_node.value)
            path = f"{key}.{name}" if key else name
            if name not in allowed:
                self.problem(key_node, path, unknown_key(name, allowed))
            elif name in out:
                self.problem(key_node, path, "duplicate key")
            else:
                out[name] = value_node
        return out

    def sequence(self, node: yaml.Node, key: str) -> list[yaml.Node]:
        if not isinstance(node, yaml.SequenceNode):
            self.problem(node, key, "expected a list")
            return []
        return list(node.value)

    def scalar(self, node: yaml.Node, key: str, kind: type[T]) -> T | None:
        wanted = KIND_NAMES.get(kind, kind.__name__)
        if not isinstance(node, yaml.ScalarNode):
            self.problem(node, key, f"expected {wanted}")
            return None
        ok, value = self.construct(node, key)
        if not ok:
            return None
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        # A bare 12389 or 1.5 where text is wanted (an AS number, a version) is meant as text.
        if kind is str and isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            self.problem(node, key, f"expected {wanted}, got {values.short(value)}")
            return None
        return value

    def parsed(self, node: yaml.Node, key: str, parse: Callable[[str], T]) -> T | None:
        text = self.scalar(node, key, str)
        if text is None:
            return None
        try:
            return parse(text)
        except ValueError as exc:
            self.problem(node, key, str(exc))
            return None

    def choice(self, node: yaml.Node, key: str, kind: type[E]) -> E | None:
        """One member of a closed vocabulary; the message lists them all."""
        text = self.scalar(node, key, str)
        if text is None:
            return None
        try:
            return kind(text)
        except ValueError:
            allowed = one_of(member.value for member in kind)
            self.problem(node, key, f"{text!r} is not a valid {kind.__name__} (use {allowed})")
            return None

    def duration(self, node: yaml.Node, key: str, limit: float = values.MAX_DURATION) -> float | None:
        if not isinstance(node, yaml.ScalarNode):
            self.problem(node, key, "expected a duration such as 30s or 5m")
            return None
        ok, value = self.construct(node, key)
        if not ok:
            return None
        try:
            return values.duration(value, limit)
        except ValueError as exc:
            self.problem(node, key, str(exc))
            return None

    def positive_int(self, node: yaml.Node, key: str) -> int | None:
        value = self.scalar(node, key, int)
        if value is not None and value < 1:
            self.problem(node, key, f"must be at least 1, got {value}")
            return None
        if value is not None and value > MAX_INT:
            self.problem(node, key, f"must be at most {MAX_INT} (2^53), got a {len(str(value))}-digit number")
            return None
        return value

    def path_value(self, node: yaml.Node, key: str) -> Path | None:
        text = self.scalar(node, key, str)
        if text is None:
            return None
        path = Path(text)
        # Relative to the file that names it, so a config directory can move as a whole.
        return path if path.is_absolute() else (self.path.parent / path)

    def existing_file(self, node: yaml.Node, key: str) -> Path | None:
        path = self.path_value(node, key)
        if path is None:
            return None
        try:
            found = path.is_file()
        except OSError as exc:  # a name too long for the file system, a path through a file…
            self.problem(node, key, f"cannot use {values.short(str(path))}: {exc.strerror or exc}")
            return None
        if not found:
            self.problem(node, key, f"no such file: {path}")
            return None
        return path
