"""Dataset cards (smolsynth.cards) from what a run recorded, for a recipe run folder and a hand-off folder, and the
publishing guard: without a Hub token, nothing is sent."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from smolsynth.cards import dataset_card, dataset_card_from, publish_run


@pytest.fixture()
def run_folder(tmp_path, engine_home) -> Path:
    from smolsynth.recipes import run_recipe

    out = tmp_path / "run"
    run_recipe({"name": "support-texts", "seed": 3, "step": [
        {"kind": "texts", "rows": 4, "batch_size": 2, "max_new_tokens": 96}]}, out, progress=False)
    return out


def test_a_run_folders_card_says_what_happened(run_folder) -> None:
    import smolsynth

    card = dataset_card(run_folder)
    record = json.loads((run_folder / "run.json").read_text())
    step = record["steps"][0]["report"]
    assert card.startswith("---\nlicense: apache-2.0\n") and "- synthetic" in card
    assert "# support-texts" in card and f"smolsynth) {smolsynth.__version__}" in card
    assert "`smolsynth/tiny`" in card and "Seed: 3" in card
    assert f"| generate_texts | {step['rows_in']} | {step['rows_out']} |" in card
    for reason, n in step["dropped"].items():  # every drop of the run, with its count
        assert f"{reason}: {n}" in card
    assert "WriteLabelledText" in card  # the prompt the step used
    assert "[[step]]" in card and 'kind = "texts"' in card and "rows = 4" in card  # the recipe that ran


def test_a_handoff_folders_card_has_its_settings_and_funnel(engine_home) -> None:
    from smolsynth import handoff
    from smolsynth.funnel import Funnel
    from smolsynth.rows import partition

    rows = [{"messages": [{"role": "user", "content": f"Q{i}"}, {"role": "assistant", "content": f"A{i}"}]}
            for i in range(4)]
    made = partition(rows, lambda r: "duplicate" if r["messages"][0]["content"] == "Q3" else None, step="dedup")
    funnel = Funnel("sft")
    funnel.add("01", made, source=True)
    folder = handoff.save(made, "sft", model="HuggingFaceTB/SmolLM2-360M-Instruct", settings={"max_new_tokens": 256},
                          funnel=funnel)
    card = dataset_card(folder)
    assert "license: apache-2.0" in card and "`HuggingFaceTB/SmolLM2-360M-Instruct`" in card
    assert '"max_new_tokens": 256' in card and "| dedup | 4 | 3 | duplicate: 1 |" in card
    assert "Rows: **3**" in card


def test_an_unknown_model_is_not_given_a_licence() -> None:
    card = dataset_card_from({"name": "x", "model": "someone/their-model", "rows": 5, "steps": []})
    assert "license: other" in card and "not known to smolsynth" in card


def test_publishing_without_a_token_sends_nothing(run_folder, monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))  # no saved token there
    from huggingface_hub import get_token

    if get_token() is not None:
        pytest.skip("this machine has a Hugging Face token")
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("the test forbids the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    with pytest.raises(RuntimeError, match="not logged in.*nothing was uploaded"):
        publish_run(run_folder, "nobody/support-texts")
    with pytest.raises(ValueError, match="not a Hub repository id"):
        publish_run(run_folder, "no-slash")
    with pytest.raises(FileNotFoundError, match="no run.json"):
        publish_run(tmp_path, "nobody/x")
    assert attempts == []


def test_the_command_line_prints_the_card_and_refuses_without_a_login(run_folder, tmp_path) -> None:
    import os

    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}
    env.pop("HF_TOKEN", None)
    card = subprocess.run([sys.executable, "-m", "smolsynth.cli", "publish", str(run_folder), "a/b", "--card-only"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert card.returncode == 0 and card.stdout.startswith("---\nlicense:")
    push = subprocess.run([sys.executable, "-m", "smolsynth.cli", "publish", str(run_folder), "a/b"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert push.returncode == 2 and "not logged in" in push.stderr
