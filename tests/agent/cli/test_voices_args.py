"""``voices``' options mean the same before and after its subcommand: ``voices -p kitchen import
x.zip`` imports into kitchen, ``voices --provider kokoro download af_heart`` asks Kokoro's catalog."""

from __future__ import annotations

import pytest

from agent.cli import build_parser


@pytest.mark.parametrize(("argv", "profile"), [
    (["voices", "-p", "kitchen", "import", "x.zip"], "kitchen"),
    (["voices", "import", "x.zip", "-p", "kitchen"], "kitchen"),
    (["voices", "-p", "hall", "import", "x.zip", "--profile", "kitchen"], "kitchen"),
    (["voices", "import", "x.zip"], "default"),
    (["voices", "-p", "kitchen", "download", "af_heart"], "kitchen"),
])
def test_the_profile_is_the_one_given_at_either_level(argv: list[str], profile: str) -> None:
    assert build_parser().parse_args(argv).profile == profile


@pytest.mark.parametrize(("argv", "provider"), [
    (["voices", "--provider", "kokoro", "download", "af_heart"], "kokoro"),
    (["voices", "download", "af_heart", "--provider", "kokoro"], "kokoro"),
    (["voices", "download", "af_heart"], None),
])
def test_the_provider_is_the_one_given_at_either_level(argv: list[str], provider: str | None) -> None:
    assert build_parser().parse_args(argv).provider == provider
