"""The settings file (``etc/agent.env``), checked line by line before it is read.

python-dotenv, which pydantic-settings reads it with, skips a line it cannot parse and takes a
bare ``NAME`` (no ``=``) as "unset": a setting the household meant would be silently missing.
The check uses the same parser, so it judges exactly the lines that are read.
"""

from __future__ import annotations

import io
from pathlib import Path

from dotenv.parser import parse_stream


class SettingsFileError(ValueError):
    """A line of the settings file the agent will not guess about: ``path:line: what is wrong``."""


def check_settings_file(path: Path) -> None:
    """Raise ``SettingsFileError`` for the first line that is not blank, a ``#`` comment, or
    ``NAME=value`` (also ``export NAME=value``, so the file may be sourced by a shell; values may
    be quoted, as in a shell)."""
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise SettingsFileError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise SettingsFileError(f"{path}: not UTF-8 text") from None
    for binding in parse_stream(io.StringIO(text)):
        original = binding.original.string
        line = binding.original.line + _leading_lines(original)
        if binding.error:
            shown = original.strip().splitlines()[0] if original.strip() else ""
            raise SettingsFileError(f"{path}:{line}: not NAME=value: {_name_only(shown)}")
        if binding.key is not None and binding.value is None:
            raise SettingsFileError(
                f"{path}:{line}: {binding.key} has no '=': write {binding.key}=<value>, or remove the line"
            )


def _leading_lines(original: str) -> int:
    """The parser starts a statement at the blank lines before it; the line the reader means is the first with text."""
    return original[: len(original) - len(original.lstrip())].count("\n")


def _name_only(text: str) -> str:
    """What a bad line shows of itself: up to its ``=``, never a value (it may be a password)."""
    return repr(text.split("=", 1)[0][:60] + ("=..." if "=" in text else ""))
