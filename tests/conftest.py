"""Shared fixtures. Every test runs offline, on the tiny model, with its own smolsynth home unless it asks otherwise."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
               "SMOLSYNTH_MODEL": "smolsynth/tiny"}


def run_python(code: str, *, env: dict[str, str] | None = None, guard: bool = False, timeout: float = 120,
               cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (offline env plus ``env``); with ``guard`` the network is cut."""
    full_env = {**os.environ, **OFFLINE_ENV, **(env or {})}
    args = [sys.executable, str(REPO / "tests" / "netguard.py"), "-c", code] if guard else [sys.executable, "-c", code]
    return subprocess.run(args, env=full_env, capture_output=True, text=True, timeout=timeout, cwd=cwd or REPO)


@pytest.fixture(scope="session")
def tiny_path() -> Path:
    """The tiny offline model's folder (built once into the shared smolsynth home)."""
    from smolsynth.models import tiny_model_path

    return tiny_model_path()
