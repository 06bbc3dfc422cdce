"""A Kokoro ``.pt`` voice (a download, an import) is read by a process of its own: the agent's
process never imports torch, and without torch the answer says what to install."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from tests.agent.voices.files import pt_bytes, style

# Run in a fresh interpreter whose ``import torch`` fails, as the agent's would without torch: the
# daemon's code path must still install the voice (the conversion's child has torch).
DAEMON_SIDE = """
import sys
sys.modules["torch"] = None  # import torch now raises ImportError in this process
from pathlib import Path
from agent.voices.formats import kokoro_voicepack
from providers.catalog import CatalogVoice
from providers.kokoro.catalog import install
work = Path(sys.argv[1])
voice = CatalogVoice(provider="kokoro", name="af_mine", language="en_US", files=())
print(install(voice, {"voices/af_mine.pt": work / "af_mine.pt"}, work / "voices")[0])
print(kokoro_voicepack(work / "af_mine.pt", work / "staging", "af_also").files[0][0])
"""


def _run(script: str, work: Path, pythonpath: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": pythonpath}
    return subprocess.run([sys.executable, "-c", script, str(work)], capture_output=True, text=True, env=env,
                          timeout=300, check=False)


def _root() -> str:
    return str(Path(__file__).resolve().parents[3])


def test_a_pt_voice_installs_as_npy_without_torch_in_the_agent(tmp_path: Path) -> None:
    import torch

    (tmp_path / "af_mine.pt").write_bytes(pt_bytes(torch.from_numpy(style(3))))
    done = _run(DAEMON_SIDE, tmp_path, _root())
    assert done.returncode == 0, done.stderr
    installed, staged = (Path(line) for line in done.stdout.split())
    assert installed == tmp_path / "voices" / "kokoro" / "af_mine.npy"
    assert np.array_equal(np.load(installed), style(3)) and np.array_equal(np.load(staged), style(3))


def test_without_torch_a_pt_voice_is_refused_with_what_to_install(tmp_path: Path) -> None:
    fake = tmp_path / "notorch" / "torch"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('No module named torch')\n")
    (tmp_path / "af_mine.pt").write_bytes(b"\x80" + b"\x00" * 64)
    script = DAEMON_SIDE.split("work = ")[0] + """
from agent.errors import ServiceError
from providers.base import ProviderUnavailableError
work = Path(sys.argv[1])
voice = CatalogVoice(provider="kokoro", name="af_mine", language="en_US", files=())
try:
    install(voice, {"voices/af_mine.pt": work / "af_mine.pt"}, work / "voices")
except ProviderUnavailableError as exc:
    print("install:", exc.code, exc)
try:
    kokoro_voicepack(work / "af_mine.pt", work / "staging", "af_mine")
except ServiceError as exc:
    print("import:", exc.code, exc)
"""
    done = _run(script, tmp_path, f"{tmp_path / 'notorch'}{os.pathsep}{_root()}")
    assert done.returncode == 0, done.stderr
    need = "Kokoro .pt voices need torch: pip install 'voice-agent[record]'"
    assert done.stdout.splitlines() == [f"install: provider_unavailable {need}", f"import: provider_unavailable {need}"]
    assert not (tmp_path / "voices" / "kokoro" / "af_mine.npy").exists()
