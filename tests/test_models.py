"""Choosing and loading models: the one switch, and clear, fast failures offline."""

from __future__ import annotations

import time

import pytest

from conftest import run_python
from smolsynth.hardware import Hardware, choose_profile
from smolsynth.models import MODEL_ENV, TINY_MODEL, resolve_model


def test_argument_beats_environment_beats_profile(monkeypatch):
    profile = choose_profile(Hardware())
    monkeypatch.delenv(MODEL_ENV, raising=False)
    assert resolve_model(profile=profile) == profile.model
    monkeypatch.setenv(MODEL_ENV, TINY_MODEL)
    assert resolve_model(profile=profile) == TINY_MODEL
    assert resolve_model("someone/else", profile=profile) == "someone/else"


def test_demo_falls_back_to_tiny_when_the_hub_is_off(monkeypatch):
    monkeypatch.delenv(MODEL_ENV, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert resolve_model("acme/not-cached-model-xyz", fallback_to_tiny=True) == TINY_MODEL
    assert resolve_model("acme/not-cached-model-xyz") == "acme/not-cached-model-xyz"


UNKNOWN = """
import time
from smolsynth import load_model, ModelNotAvailableError
t = time.perf_counter()
try:
    load_model("acme/definitely-not-a-real-model")
except ModelNotAvailableError as err:
    print("ERROR", err)
print("SECONDS", round(time.perf_counter() - t, 2))
"""


@pytest.mark.parametrize("offline_var", ["1", ""], ids=["HF_HUB_OFFLINE=1", "hub-unreachable"])
def test_unknown_model_offline_fails_fast_naming_the_model_and_the_switch(offline_var):
    env = {"HF_HUB_OFFLINE": offline_var, "TRANSFORMERS_OFFLINE": offline_var}
    started = time.perf_counter()
    result = run_python(UNKNOWN, env=env, guard=not offline_var, timeout=60)
    elapsed = time.perf_counter() - started
    assert result.returncode == 0, result.stderr
    message = next(line for line in result.stdout.splitlines() if line.startswith("ERROR"))
    assert "acme/definitely-not-a-real-model" in message
    assert "SMOLSYNTH_MODEL=smolsynth/tiny" in message and "HF_HUB_OFFLINE" in message
    seconds = float(result.stdout.split("SECONDS")[1].split()[0])
    assert seconds < 10, f"took {seconds}s to fail (process {elapsed:.1f}s)"
