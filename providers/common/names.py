"""Names that become path segments and topic levels: no '..', '/', wildcards or hidden files."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field

# Profiles, speakers, model folders.
PLAIN_NAME = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
# Voice files may carry dots (en_US-joe-medium, af_heart.v2) and letters of any script (Piper's
# pt_PT-tugão-medium); still no path, no leading dot and no control or space characters.
VOICE_FILE_NAME = r"^[^\W_][\w.-]{0,127}$"

_PLAIN = re.compile(PLAIN_NAME)
_VOICE_FILE = re.compile(VOICE_FILE_NAME)

PlainName = Annotated[str, Field(pattern=PLAIN_NAME)]


def is_plain_name(name: str) -> bool:
    return bool(_PLAIN.fullmatch(name))  # fullmatch: "$" alone lets a trailing newline through


def is_voice_file_name(name: str) -> bool:
    return bool(_VOICE_FILE.fullmatch(name))
