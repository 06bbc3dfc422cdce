"""Every option of every command says its default in its help (and a range or unit where it has
one): a user should not have to read the code to know what leaving it out does."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest

from agent import __version__
from agent.cli import build_parser, seconds


def parsers(parser: argparse.ArgumentParser, path: str = "voice-agent") -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from parsers(child, f"{path} {name}")


def options() -> list[tuple[str, argparse.Action]]:
    return [(path, action) for path, parser in parsers(build_parser()) for action in parser._actions
            if not isinstance(action, (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction))]


def test_every_command_is_walked() -> None:
    paths = {path for path, _ in parsers(build_parser())}
    assert {"voice-agent say", "voice-agent samples list", "voice-agent samples export", "voice-agent train follow",
            "voice-agent kokoro train-voicepack", "voice-agent sovits install"} <= paths


@pytest.mark.parametrize(("path", "action"), options(), ids=lambda x: x if isinstance(x, str) else "/".join(x.option_strings or [x.dest]))
def test_every_argument_is_explained(path: str, action: argparse.Action) -> None:
    assert action.help, f"{path} {action.option_strings or action.dest}: no help"
    if action.option_strings:
        assert "default" in action.help, f"{path} {action.option_strings}: help says no default"


@pytest.mark.parametrize(("path", "wanted"), [
    ("voice-agent say", ["0.5-2.0", "seconds to wait for the answer, > 0 (default: 60)"]),
    ("voice-agent samples list", ["1-10000", "0-100", "(default: 50)"]),
    ("voice-agent samples export", ["1-10000", "0-100"]),
])
def test_ranges_and_units_are_in_the_help(path: str, wanted: list[str]) -> None:
    text = " ".join(dict(parsers(build_parser()))[path].format_help().split())
    assert all(w in text for w in wanted), (wanted, text)


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        build_parser().parse_args(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"voice-agent {__version__}"


@pytest.mark.parametrize("text", ["0", "-1", "inf", "nan"])
def test_timeouts_are_positive_seconds(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        seconds(text)


def test_a_timeout_of_a_fraction_of_a_second() -> None:
    assert seconds("0.5") == 0.5 and seconds("60") == 60.0
