"""The voices path's requests (MQTT payloads, HTTP bodies, the CLI's arguments)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from agent.requests import ProviderName, Request
from providers.common.names import VOICE_FILE_NAME
from providers.settings_base import LocalPath


class VoicesRequest(Request):
    """Which voices to list: installed ones, and (``catalog``) the ones a download would add."""

    catalog: bool = Field(True, description="Also list catalog voices that are not installed (marked installed: false).")
    provider: ProviderName | None = Field(None, description="Only this provider's voices.")
    language: str = Field("", max_length=16, pattern=r"^[A-Za-z_-]*$",
                          description="Only voices of this language: a family (en) or a code (en_US, en-us).")


class DownloadRequest(Request):
    """Catalog voices to fetch into the household's voices (``out/voices``)."""

    names: list[Annotated[str, Field(min_length=1, max_length=128, pattern=VOICE_FILE_NAME)]] = Field(
        min_length=1, max_length=16, description="Catalog voice names (or their aliases), e.g. en_US-lessac-medium, af_heart.")
    provider: ProviderName | None = Field(None, description="Whose catalog (default: the first that has the name).")


class CatalogRequest(Request):
    """The catalogs' voice counts; ``update`` fetches a newer catalog first (Piper's voices.json)."""

    update: bool = Field(False, description="Fetch each provider's newer catalog from its voices URL first.")


class ImportRequest(Request):
    """Import the voices a file, a folder, or a zip/tar of them holds (``agent/voices/imports.py``)."""

    path: LocalPath = Field(..., min_length=1, max_length=4096,
                            description="The file, folder or archive: absolute, or relative to the profile's folder.")
    scope: Literal["profile", "household"] = Field(
        "profile", description="Into the profile's voices (profiles/<p>/out/voices) or every profile's (out/voices).")
    name: str | None = Field(None, max_length=128, pattern=VOICE_FILE_NAME,
                             description="The voice's name, when the file's is not it (an import of one voice only).")
    replace: bool = Field(False, description="Replace an installed voice of the same name (else voice_exists).")
