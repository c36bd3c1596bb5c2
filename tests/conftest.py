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


# ---------------------------------------------------------------------------------------------------------------
# Training fixtures (smolsynth.training / smolsynth.evaluation; tests/test_training.py, tests/test_evaluation.py).
# One tiny SFT run and one tiny DPO run per session, shared by both files.
def make_chats(n: int = 16):
    """SFT data in the D6 format: a ``messages`` column only (system turn on even rows)."""
    from datasets import Dataset

    rows = []
    for i in range(n):
        msgs = [{"role": "system", "content": "Answer briefly."}] if i % 2 == 0 else []
        msgs += [{"role": "user", "content": f"What is {i} plus {i}?"},
                 {"role": "assistant", "content": f"{i} plus {i} is {2 * i}."}]
        rows.append({"messages": msgs})
    return Dataset.from_list(rows)


def make_pairs(n: int = 16):
    """DPO data in the D6 format, with the extra columns the judging step leaves (ratings, model names)."""
    from datasets import Dataset

    return Dataset.from_list([{
        "prompt": [{"role": "user", "content": f"What is {i} plus {i}?"}],
        "chosen": [{"role": "assistant", "content": f"{i} plus {i} is {2 * i}."}],
        "rejected": [{"role": "assistant", "content": f"I do not know, maybe {i + 3}?"}],
        "chosen_rating": 5, "rejected_rating": 2, "chosen_model": "a", "rejected_model": "b",
    } for i in range(n)])


@pytest.fixture(scope="session")
def trained_sft(tmp_path_factory, tiny_path):
    """A 6-step SFT of the tiny model (learning rate 1e-3 so that training visibly moves it), model kept."""
    from smolsynth.training import sft

    return sft(make_chats(), model="smolsynth/tiny", output_dir=str(tmp_path_factory.mktemp("sft")), max_steps=6,
               learning_rate=1e-3, keep_model=True)


@pytest.fixture(scope="session")
def trained_dpo(tmp_path_factory, trained_sft):
    """A 4-step DPO from the saved SFT checkpoint path."""
    from smolsynth.training import dpo

    return dpo(make_pairs(), model=trained_sft.output_dir, output_dir=str(tmp_path_factory.mktemp("dpo")),
               max_steps=4, learning_rate=1e-4)
# ------------------------------------------------------------------------------------------- end training fixtures


# ------------------------------------------------------------------------------------- engine fixtures (llm/runner)
@pytest.fixture
def engine_home(tmp_path, monkeypatch, tiny_path):
    """A private SMOLSYNTH_HOME (so cached results are not shared between tests) that reuses the built tiny model."""
    home = tmp_path / "smolsynth-home"
    home.mkdir()
    (home / "models").symlink_to(tiny_path.parent, target_is_directory=True)
    monkeypatch.setenv("SMOLSYNTH_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def tiny_llm_factory(tiny_path):
    """Build a LocalLLM on the tiny model (the loaded model is shared process-wide, so this is cheap)."""
    from smolsynth.llm import LocalLLM

    def make(**kwargs):
        kwargs.setdefault("generation_kwargs", {"max_new_tokens": 12})
        return LocalLLM("smolsynth/tiny", **kwargs)

    return make
# ----------------------------------------------------------------------------------------- end engine fixtures


# ----------------------------------------------------------------------- preference fixtures (smolsynth.preferences)
PREFERENCE_PROMPTS = [f"{verb} {topic}." for verb in ("Explain", "Describe", "Give two facts about", "Name a use of")
                      for topic in ("rain", "bread", "a bicycle", "the moon", "music")]  # 20 distinct prompts


@pytest.fixture(scope="session")
def preference_pipeline(tmp_path_factory, tiny_path):
    """The notebook-02 path on the tiny model, once per session: 20 prompts -> 2 pooled + 2 EvolQuality candidates
    -> constrained UltraFeedback (overall rating) -> pairs with the default rule. Returns every step's result."""
    from smolsynth.preferences import binarize, evolve_quality, pool_responses
    from smolsynth.ultrafeedback import judge

    cache = str(tmp_path_factory.mktemp("preference-cache"))
    common = {"progress": False, "cache_dir": cache}
    pooled = pool_responses(PREFERENCE_PROMPTS, max_new_tokens=12, **common)
    evolved = evolve_quality(pooled.dataset, ["helpfulness", "deepening"], max_new_tokens=48, **common)
    judged = judge(evolved.dataset, max_rationale_chars=24, **common)
    pairs = binarize(judged.dataset)
    return {"prompts": PREFERENCE_PROMPTS, "pooled": pooled, "evolved": evolved, "judged": judged, "pairs": pairs,
            "cache_dir": cache}
# ------------------------------------------------------------------- end preference fixtures


# ------------------------------------------------------------------------------------------- test order (xdist)
LONGEST_FIRST = ("test_real_notebooks.py", "test_real_classification.py", "test_demo.py", "test_real_model.py",
                 "test_real_topics.py", "test_real_beyond.py", "test_servers.py", "test_recipes.py",
                 "test_real_recipes.py",
                 "test_notebooks.py")
"""Test files that take minutes, longest first. ``make test`` runs ``--dist loadfile --no-loadscope-reorder``, so
these start at once on different workers and the short files fill in around them (xdist's default order, most
tests first, started the 15-minute notebook lane last, alone, for a 30-minute run)."""


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: every other file keeps its order
