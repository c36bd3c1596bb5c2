"""The real-model lane of ``smolsynth run``: the shipped recipe ``instructions`` (Magpie -> answers -> SFT) on the
embedded SmolLM2-135M, offline, through the command line, at a small size; then what it wrote is checked: readable
instructions, answers that ended by themselves, a checkpoint that loads, and a run record that accounts for every
step (about 2 minutes on 2 cores)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from smolsynth import offline

pytestmark = pytest.mark.skipif(not offline.embedded_available(),
                                reason=f"the embedded model is not installed ({offline.INSTALL_HINT})")


def test_shipped_recipe_runs_offline_on_the_embedded_model(tmp_path, engine_home):
    out = tmp_path / "run"
    env = {**os.environ, "SMOLSYNTH_MODEL": offline.EMBEDDED_MODEL, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-m", "smolsynth.cli", "run", "instructions", "--out", str(out),
                           "--set", "1.rows=4", "--set", "3.max_steps=1"],
                          env=env, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    assert "magpie" in done.stdout and "SFT" in done.stdout  # the summary table

    record = json.loads((out / "run.json").read_text())
    assert record["model"] == offline.EMBEDDED_MODEL and "finished" in record
    assert [s["kind"] for s in record["steps"]] == ["magpie", "answers", "sft"]
    answers = [json.loads(line) for line in (out / "2-answers.jsonl").read_text().splitlines()]
    assert answers, record["steps"][1]["report"]
    assert all(len(r["instruction"].split()) >= 3 and r["generation"].strip() for r in answers)
    dropped = [json.loads(line) for line in (out / "2-answers.dropped.jsonl").read_text().splitlines()]
    assert record["steps"][1]["report"]["rows_out"] == len(answers)
    assert sum(record["steps"][1]["report"]["dropped"].values()) == len(dropped)
    sft = record["steps"][2]
    assert sft["metrics"]["train_steps"] == 1 and (out / "3-sft" / "config.json").exists()
    from smolsynth.models import load_model

    loaded = load_model(str(out / "3-sft"))
    assert loaded is not None
