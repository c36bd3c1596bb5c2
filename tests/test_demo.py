"""The README's main job: `smolsynth demo`, offline, from a clean smolsynth home, with the network cut."""

from __future__ import annotations

import json

import pytest

from conftest import run_python


def _read(out, name):
    """A saved dataset as rows ([] when the demo saved none: an empty Parquet file has no schema to read)."""
    import datasets

    if not (out / f"{name}.jsonl").read_text().strip():
        return []
    return list(datasets.Dataset.from_parquet(str(out / f"{name}.parquet")))


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
    from smolsynth.gates import echoes_template

    out, _ = demo
    sft, pairs = _read(out, "sft"), _read(out, "preferences")
    texts = [row["messages"][-1]["content"] for row in sft]
    texts += [row[col][0]["content"] for row in pairs for col in ("chosen", "rejected")]
    assert texts
    for text in texts:
        assert not echoes_template(text), text
        assert text.strip(), text


def test_demo_writes_every_dataset_as_parquet_and_jsonl_and_a_summary(demo):
    out, result = demo
    for name in ("instructions", "responses", "judged", "preferences", "sft"):
        lines = (out / f"{name}.jsonl").read_text().splitlines()
        assert len(_read(out, name)) == len(lines), name
    assert _read(out, "instructions") and _read(out, "sft")
    summary = json.loads((out / "summary.json").read_text())
    stages = [s["step"] for s in summary["stages"]]
    assert stages[0] == "magpie"
    assert any(s.startswith("judge") for s in stages) and any(s.startswith("SFT") for s in stages)
    # DPO runs when at least 2 pairs survived the gates and the judge; SmolLM2-135M's yield varies from run to run
    # (0 to 6 pairs of 10 instructions measured), so the demo writes more instructions, up to 3 rounds, and a DPO
    # still skipped must say so, in the output and in the summary
    if len(_read(out, "preferences")) >= 2:
        assert stages[-1].startswith("DPO") and summary["checkpoints"]["dpo"]
    else:
        assert "DPO skipped" in result.stdout and summary["checkpoints"]["dpo"] is None
    for stage in summary["stages"]:  # nothing silent: every row is kept or dropped with a reason
        assert stage["rows_in"] == stage["rows_out"] + sum(stage["dropped"].values()), stage
    assert "rows in" in (out / "summary.md").read_text()


def test_demo_pairs_are_dpo_ready_and_checkpoints_load(demo):
    import datasets

    from smolsynth import load_model

    out, _ = demo
    for row in _read(out, "preferences"):
        assert set(row) >= {"prompt", "chosen", "rejected"}
        assert row["chosen"] != row["rejected"]
        assert row["prompt"][-1]["role"] == "user" and row["chosen"][0]["role"] == "assistant"
    sft = datasets.Dataset.from_parquet(str(out / "sft.parquet"))
    assert sft.column_names == ["messages"]
    summary = json.loads((out / "summary.json").read_text())
    last = summary["checkpoints"]["dpo"] or summary["checkpoints"]["sft"]  # the last model the demo trained
    model, tokenizer = load_model(str(last))
    inputs = tokenizer("Hello", return_tensors="pt")
    assert model.generate(**inputs, max_new_tokens=4, do_sample=False).shape[1] > inputs["input_ids"].shape[1]


def test_demo_writes_more_instructions_until_dpo_has_pairs(tmp_path, engine_home, monkeypatch, capsys):
    """On the tiny model, with a pair target it cannot reach: three rounds of new instructions, every round's rows
    saved, then DPO skipped with the reason said."""
    from smolsynth import demo

    monkeypatch.setattr(demo, "MIN_PAIRS", 10**6)
    summary = demo.run_demo(tmp_path / "out", model="smolsynth/tiny", rows=3, steps=1, max_new_tokens=16,
                            progress=False)
    out = capsys.readouterr().out
    assert "Round 1: " in out and "Round 2: " in out and "Round 3: " not in out and "DPO skipped" in out
    magpie_stages = [s for s in summary["stages"] if s["step"] == "magpie"]
    assert len(magpie_stages) == demo.ROUNDS
    assert len(_read(tmp_path / "out", "instructions")) > magpie_stages[0]["rows_out"]  # later rounds' rows kept
    assert summary["checkpoints"]["dpo"] is None and summary["checkpoints"]["sft"]
