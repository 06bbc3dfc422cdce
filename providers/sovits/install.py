"""``voice-agent sovits install``: the steps that give the agent a GPT-SoVITS server to run.

Clone the repository, make a venv beside it, install PyTorch and the requirements, fetch the
pretrained models. Each step is printed before it runs; when a step cannot run (no network, a
folder in the way) the command stops with the reason and the remaining steps to do by hand.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO_URL = "https://github.com/RVC-Boss/GPT-SoVITS.git"
TORCH_INDEX = {
    "cpu": "https://download.pytorch.org/whl/cpu",
    "cu124": "https://download.pytorch.org/whl/cu124",
    "cu128": "https://download.pytorch.org/whl/cu128",
}
MODEL_HOSTS = {
    "hf": "https://huggingface.co/XXXXRT/GPT-SoVITS-Pretrained/resolve/main",
    "hf-mirror": "https://hf-mirror.com/XXXXRT/GPT-SoVITS-Pretrained/resolve/main",
    "modelscope": "https://www.modelscope.cn/models/XXXXRT/GPT-SoVITS-Pretrained/resolve/master",
}


class InstallError(Exception):
    pass


@dataclass(frozen=True)
class Step:
    text: str  # what a person would type or do
    run: Callable[[], None]


def plan(install_dir: Path, device: str, source: str, repo_url: str = REPO_URL) -> list[Step]:
    python = install_dir / ".venv" / "bin" / "python"
    models = MODEL_HOSTS[source]

    def sh(*argv: str | Path, cwd: Path | None = None) -> Step:
        command = [str(a) for a in argv]
        return Step(" ".join(command) + (f"   (in {cwd})" if cwd else ""), lambda: _run(command, cwd))

    return [
        Step(f"git clone --depth 1 {repo_url} {install_dir}", lambda: _clone(repo_url, install_dir)),
        sh(shutil.which("python3") or sys.executable, "-m", "venv", install_dir / ".venv"),
        sh(python, "-m", "pip", "install", "torch", "torchaudio", "--index-url", TORCH_INDEX[device]),
        sh(python, "-m", "pip", "install", "--no-deps", "-r", "extra-req.txt", cwd=install_dir),
        sh(python, "-m", "pip", "install", "-r", "requirements.txt", cwd=install_dir),
        Step(f"download {models}/pretrained_models.zip into {install_dir}/GPT_SoVITS/pretrained_models",
             lambda: _fetch_zip(f"{models}/pretrained_models.zip", install_dir / "GPT_SoVITS", "pretrained_models")),
        Step(f"download {models}/G2PWModel.zip into {install_dir}/GPT_SoVITS/text/G2PWModel",
             lambda: _fetch_zip(f"{models}/G2PWModel.zip", install_dir / "GPT_SoVITS" / "text", "G2PWModel")),
        Step("install ffmpeg (apt-get install ffmpeg): GPT-SoVITS decodes reference audio with it",
             lambda: None if shutil.which("ffmpeg") else _fail("ffmpeg is not installed: apt-get install ffmpeg")),
    ]


def install(install_dir: Path, device: str, source: str, repo_url: str = REPO_URL, dry_run: bool = False) -> int:
    steps = plan(install_dir, device, source, repo_url)
    if dry_run:
        for number, step in enumerate(steps, 1):
            print(f"{number}. {step.text}")
        return 0
    host = urllib.parse.urlsplit(repo_url).hostname
    if host and repo_url.startswith(("http://", "https://")) and not _reachable(repo_url):
        _explain(steps, 0, f"cannot reach {host} (no network here?)")
        return 1
    for number, step in enumerate(steps, 1):
        print(f"[{number}/{len(steps)}] {step.text}", flush=True)
        try:
            step.run()
        except InstallError as exc:
            _explain(steps, number - 1, str(exc))
            return 1
    print(f"GPT-SoVITS is installed in {install_dir}; start it with `voice-agent sovits start`")
    return 0


def _explain(steps: list[Step], failed: int, reason: str) -> None:
    print(f"error: step {failed + 1} failed: {reason}", file=sys.stderr)
    print("Finish the installation by hand (then `voice-agent sovits start`):", file=sys.stderr)
    for number, step in enumerate(steps[failed:], failed + 1):
        print(f"  {number}. {step.text}", file=sys.stderr)


def _fail(reason: str) -> None:
    raise InstallError(reason)


def _reachable(url: str, timeout: float = 5.0) -> bool:
    parts = urllib.parse.urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "", port), timeout=timeout):
            return True
    except OSError:
        return False


def _run(command: list[str], cwd: Path | None) -> None:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_HTTP_LOW_SPEED_LIMIT": "1000", "GIT_HTTP_LOW_SPEED_TIME": "30"}
    try:
        result = subprocess.run(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    except OSError as exc:
        raise InstallError(f"cannot run {command[0]}: {exc.strerror or exc}") from exc
    if result.returncode != 0:
        output = result.stdout.decode("utf-8", "replace").strip().splitlines()[-5:]
        raise InstallError(f"`{' '.join(command)}` exited with {result.returncode}: " + " | ".join(output))


def _clone(repo_url: str, target: Path) -> None:
    if (target / "api_v2.py").is_file():
        print(f"   {target} already holds GPT-SoVITS; keeping it")
        return
    if target.exists() and any(target.iterdir()):
        raise InstallError(f"{target} exists and is not a GPT-SoVITS checkout: move it away or set tts.sovits.installDir")
    if shutil.which("git") is None:
        raise InstallError("git is not installed: apt-get install git")
    target.parent.mkdir(parents=True, exist_ok=True)
    _run(["git", "clone", "--depth", "1", repo_url, str(target)], None)


def _fetch_zip(url: str, into: Path, folder: str) -> None:
    target = into / folder
    if target.is_dir() and any(p.name != ".gitignore" for p in target.iterdir()):
        print(f"   {target} is already filled; keeping it")
        return
    archive = into / f".{folder}.zip.part"
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(archive, "wb") as out:
            shutil.copyfileobj(response, out, 1 << 20)
        with zipfile.ZipFile(archive) as bundle:
            bundle.extractall(into)
    except (OSError, zipfile.BadZipFile) as exc:
        raise InstallError(f"cannot fetch {url}: {exc}") from exc
    finally:
        archive.unlink(missing_ok=True)
