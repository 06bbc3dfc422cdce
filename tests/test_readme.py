"""The README's shell lines work as written: every topic filter given to mosquitto_sub is one a
broker accepts (a wildcard is a whole level; '#' only last)."""

from __future__ import annotations

import re
import shlex

import pytest

from tests.conftest import REPO


def valid_filter(topic: str) -> bool:
    levels = topic.split("/")
    for index, level in enumerate(levels):
        if "#" in level and (level != "#" or index != len(levels) - 1):
            return False
        if "+" in level and level != "+":
            return False
    return bool(topic)


def subscribed_filters(text: str) -> list[str]:
    found = []
    for line in text.splitlines():
        for command in re.findall(r"mosquitto_sub[^`|&;\n]*", line):
            words = shlex.split(command)
            found += [words[i + 1] for i, word in enumerate(words[:-1]) if word == "-t"]
    return found


def test_every_mosquitto_sub_filter_in_the_readme_is_valid() -> None:
    filters = subscribed_filters((REPO / "README.md").read_text())
    assert len(filters) >= 3 and "voice/#" in filters
    assert [f for f in filters if not valid_filter(f)] == []


@pytest.mark.parametrize(("topic", "valid"), [
    ("voice/#", True), ("voice/+/event/+", True), ("#", True), ("voice/default/event/hass.speak", True),
    ("voice/default/event/hass.#", False), ("voice/#/event", False), ("voice/a+/x", False), ("", False),
])
def test_the_filter_rule(topic: str, valid: bool) -> None:
    assert valid_filter(topic) is valid
