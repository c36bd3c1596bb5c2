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
    assert resolve_model(profile=profile, offline_fallback=False) == profile.model
    monkeypatch.setenv(MODEL_ENV, TINY_MODEL)
    assert resolve_model(profile=profile) == TINY_MODEL
    assert resolve_model("someone/else", profile=profile) == "someone/else"


def test_the_default_falls_back_to_an_offline_model_when_the_hub_is_off(monkeypatch):
    from smolsynth.offline import EMBEDDED_MODEL

    monkeypatch.delenv(MODEL_ENV, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    profile = choose_profile(Hardware())  # its default, a hub model, is not in this machine's hub cache
    assert resolve_model(profile=profile) in {EMBEDDED_MODEL, TINY_MODEL}
    assert resolve_model("acme/not-cached-model-xyz") == "acme/not-cached-model-xyz"  # a named model: never replaced


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


def test_weights_fingerprint_is_none_for_a_hub_id_and_changes_when_a_folder_is_resaved(tmp_path):
    from smolsynth.models import build_tiny_model, weights_fingerprint

    assert weights_fingerprint("acme/not-a-folder") is None
    folder = build_tiny_model(tmp_path / "m", seed=0)
    first = weights_fingerprint(str(folder))
    assert first and weights_fingerprint(str(folder)) == first  # no change, same fingerprint
    build_tiny_model(folder, seed=1)
    assert weights_fingerprint(str(folder)) != first
    assert weights_fingerprint(TINY_MODEL)  # the tiny model stands for its built folder


FRESH = """
import json, sys
from smolsynth.generation import generate
print("ANSWERS" + json.dumps(list(generate(QUESTIONS, model=sys.argv[1], temperature=0, max_new_tokens=8, progress=False,
                                      repetition_penalty=3.0, cache=False, **EXTRA).dataset["generation"])))
"""
QUESTIONS = ["Name a colour.", "Name a fruit.", "Say hello."]


def test_retrained_folder_is_loaded_again_and_not_read_from_the_result_cache(engine_home, tmp_path):
    """Weights saved again into the same folder (retraining into one output_dir): same process, new answers."""
    import json

    from smolsynth.generation import generate
    from smolsynth.models import _LOADED, build_tiny_model

    folder = str(build_tiny_model(tmp_path / "student", seed=0))
    extra = {"allow_truncated": True}  # the tiny random model never ends by itself: keep its cut answers

    def answers() -> list:  # through the runner, with the result cache on
        # greedy; the repetition penalty keeps the random tiny model from writing only newlines (dropped as empty)
        return list(generate(QUESTIONS, model=folder, temperature=0, max_new_tokens=8, progress=False,
                             repetition_penalty=3.0, **extra).dataset["generation"])

    before = answers()
    assert answers() == before  # unchanged folder: from the cache, the same
    build_tiny_model(folder, seed=1)  # "retrained": other weights, same folder
    after = answers()
    assert after != before
    assert sum(1 for key in _LOADED if key[0] == folder) == 1  # the old weights are not kept in memory
    code = f"QUESTIONS = {QUESTIONS!r}\nEXTRA = {extra!r}\n" + FRESH
    fresh = run_python(code.replace("sys.argv[1]", repr(folder)), env={"SMOLSYNTH_HOME": str(tmp_path / "home")})
    assert fresh.returncode == 0, fresh.stderr[-3000:]
    assert json.loads(fresh.stdout.split("ANSWERS")[1]) == after


def test_the_engine_leaves_a_tokenizer_as_it_was_saved(tmp_path):
    """No pad token and right padding in the saved tokenizer: the engine pads by hand and changes neither."""
    from smolsynth.llm import LocalLLM
    from smolsynth.models import build_tiny_model, load_tokenizer

    folder = build_tiny_model(tmp_path / "right", seed=0)
    tok = load_tokenizer(str(folder))
    tok.padding_side = "right"
    tok.pad_token = None
    tok.save_pretrained(folder)
    llm = LocalLLM(str(folder))
    chats = [[{"role": "user", "content": "Hi" + " there" * i}] for i in range(4)]
    out = llm.generate(chats, max_new_tokens=6, temperature=0)
    assert llm.tokenizer.padding_side == "right" and llm.tokenizer.pad_token is None
    as_built = build_tiny_model(tmp_path / "left", seed=0)  # the same weights; left padding and a pad token
    same_weights = LocalLLM(str(as_built)).generate(chats, max_new_tokens=6, temperature=0)
    assert [o["generations"] for o in out] == [o["generations"] for o in same_weights]
