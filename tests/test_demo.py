"""The README's main job: `smolsynth demo`, offline, from a clean smolsynth home, with the network cut."""

from __future__ import annotations

import json

import pytest

from conftest import run_python


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    home, out = tmp_path_factory.mktemp("home"), tmp_path_factory.mktemp("demo") / "out"
    code = f"import sys; from smolsynth.cli import main; sys.exit(main(['demo', '--out', r'{out}', '--rows', '10', '--steps', '2']))"
    # no HF_HUB_OFFLINE and no SMOLSYNTH_MODEL: the demo must notice that the hub is unreachable by itself
    env = {"SMOLSYNTH_HOME": str(home), "HF_HUB_OFFLINE": "", "TRANSFORMERS_OFFLINE": "", "SMOLSYNTH_MODEL": ""}
    result = run_python(code, env=env, guard=True, timeout=1500)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out, result


def test_demo_uses_the_embedded_real_model_without_the_hub_and_touches_no_network(demo):
    out, result = demo
    summary = json.loads((out / "summary.json").read_text())
    assert summary["model"] == "smolsynth/smollm2-135m"
    assert isinstance(summary["dropped"], dict)  # every gate's drops, counted
    assert int(result.stdout.split("network_attempts=")[1].split()[0]) <= 1  # the one refused hub probe


def test_demo_training_data_has_no_cut_off_or_scaffolding_text(demo):
    """The gates on the real model: what reaches a saved SFT or DPO dataset finished by itself and copies no
    prompt scaffolding."""
    import datasets

    from smolsynth.gates import echoes_template

    out, _ = demo
    sft = datasets.Dataset.from_parquet(str(out / "sft.parquet"))
    pairs = datasets.Dataset.from_parquet(str(out / "preferences.parquet"))
    texts = [row["messages"][-1]["content"] for row in sft]
    texts += [row[col][0]["content"] for row in pairs for col in ("chosen", "rejected")]
    assert texts
    for text in texts:
        assert not echoes_template(text), text
        assert text.strip(), text


def test_demo_writes_every_dataset_as_parquet_and_jsonl_and_a_summary(demo):
    import datasets

    out, _ = demo
    for name in ("instructions", "responses", "judged", "preferences", "sft"):
        parquet = datasets.Dataset.from_parquet(str(out / f"{name}.parquet"))
        lines = (out / f"{name}.jsonl").read_text().splitlines()
        assert len(parquet) == len(lines) > 0, name
    summary = json.loads((out / "summary.json").read_text())
    stages = [s["step"] for s in summary["stages"]]
    assert stages[0] == "magpie" and stages[-1].startswith("DPO")
    assert any(s.startswith("judge") for s in stages) and any(s.startswith("SFT") for s in stages)
    for stage in summary["stages"]:  # nothing silent: every row is kept or dropped with a reason
        assert stage["rows_in"] == stage["rows_out"] + sum(stage["dropped"].values()), stage
    assert "rows in" in (out / "summary.md").read_text()


def test_demo_pairs_are_dpo_ready_and_checkpoints_load(demo):
    import datasets

    from smolsynth import load_model

    out, _ = demo
    pairs = datasets.Dataset.from_parquet(str(out / "preferences.parquet"))
    assert set(pairs.column_names) >= {"prompt", "chosen", "rejected"}
    for row in pairs:
        assert row["chosen"] != row["rejected"]
        assert row["prompt"][-1]["role"] == "user" and row["chosen"][0]["role"] == "assistant"
    sft = datasets.Dataset.from_parquet(str(out / "sft.parquet"))
    assert sft.column_names == ["messages"]
    model, tokenizer = load_model(str(out / "dpo-model"))
    inputs = tokenizer("Hello", return_tensors="pt")
    assert model.generate(**inputs, max_new_tokens=4, do_sample=False).shape[1] > inputs["input_ids"].shape[1]
