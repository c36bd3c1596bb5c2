"""The preference path on the real tiny model: pooled and evolved candidates, the constrained UltraFeedback judge on
every aspect, pairs for >= 90% of prompts with every drop counted, the position-bias check, and the hand-off to TRL
(format detection stable under hash seeds, a few real DPO steps). The shared run is ``preference_pipeline``
(tests/conftest.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from smolsynth.preferences import pool_responses, position_bias
from smolsynth.ultrafeedback import ASPECTS, judge


def _accounted(report) -> bool:
    return report.rows_in == report.rows_out + sum(report.dropped.values())


def test_at_least_90_percent_of_prompts_become_pairs_and_every_drop_is_counted(preference_pipeline):
    p = preference_pipeline
    n_prompts = len(p["prompts"])
    for step in ("pooled", "evolved", "judged", "pairs"):
        result = p[step]
        assert _accounted(result.report), (step, result.report)
        assert all(_accounted(r) for r in result.steps), (step, result.steps)
        assert len(result.dropped) == sum(result.report.dropped.values())
        if len(result.dropped):
            assert all(result.dropped["reason"])
    assert all(len(g) == 4 for g in p["evolved"].dataset["generations"])  # 2 pooled + 2 rewrites per prompt
    assert p["judged"].report.dropped == {}  # a parse failure on the constrained path is a bug, not noise
    pairs = p["pairs"].dataset
    rate = len(pairs) / n_prompts
    print(f"prompts -> pairs on the tiny model: {len(pairs)}/{n_prompts} = {rate:.0%}; "
          f"drops {p['pairs'].report.dropped}")
    assert rate >= 0.9, p["pairs"].report
    assert p["pairs"].report.step == "binarize (best-vs-random-lower)"
    for row in pairs:
        assert row["chosen"] != row["rejected"]
        assert row["chosen"][0]["content"].strip() != row["rejected"][0]["content"].strip()
        assert row["chosen_rating"] > row["rejected_rating"]
        assert row["prompt"] == [{"role": "user", "content": row["prompt"][0]["content"]}]
        assert row["chosen_model"] and isinstance(row["chosen_rationale"], str)


def test_pooled_and_evolved_candidates_say_where_they_came_from(preference_pipeline):
    row = preference_pipeline["evolved"].dataset[0]
    assert row["generation_sources"] == ["pool", "pool", "evol:helpfulness", "evol:deepening"]
    assert row["generation_models"][:2] == ["smolsynth/tiny (concise)", "smolsynth/tiny (precise)"]
    assert row["generation_models"][2] == "smolsynth/tiny (EvolQuality helpfulness of #1)"
    assert len(row["generation_models"]) == len(row["generation_sources"]) == len(row["generations"])
    assert [r.step for r in preference_pipeline["evolved"].steps] == ["EvolQuality: helpfulness",
                                                                      "EvolQuality: deepening"]


def test_every_aspect_gives_exactly_one_rating_per_candidate_on_the_tiny_model(preference_pipeline):
    """Overall rating on the rows of the shared run (4 candidates each), then the four aspects on 6 rows with 2
    or 4 candidates (one grammar per candidate count): every judgment parses, no rating is missing."""
    p = preference_pipeline
    judged = p["judged"].dataset
    assert len(judged) == len(p["evolved"].dataset) >= 18  # the judge drops nothing; pooling may drop a cut-off row
    assert all(len(r) == len(g) and all(x in range(1, 6) for x in r)
               for r, g in zip(judged["ratings"], judged["generations"]))
    rows = list(p["pooled"].dataset.select(range(4))) + list(p["evolved"].dataset.select(range(4, 6)))
    result = judge(rows, "all", max_rationale_chars=16, progress=False, cache_dir=p["cache_dir"])
    assert result.report.dropped == {} and len(result.dataset) == 6, result.funnel
    assert [r.step for r in result.steps] == [f"judge: {a} ({n} candidates)" for a in ASPECTS for n in (2, 4)]
    assert [len(g) for g in result.dataset["generations"]] == [2, 2, 2, 2, 4, 4]
    for row in result.dataset:
        n = len(row["generations"])
        for aspect in ASPECTS:
            allowed = (*range(1, 6), None) if aspect == "honesty" else range(1, 6)  # honesty may answer "N/A"
            assert len(row[f"ratings_{aspect}"]) == n and all(x in allowed for x in row[f"ratings_{aspect}"])
            assert len(row[f"rationales_{aspect}"]) == n
            assert all(isinstance(t, str) for t in row[f"rationales_{aspect}"])
        assert row["ratings"] == [[row[f"ratings_{a}"][c] for a in ASPECTS] for c in range(n)]
        assert len(row["types_truthfulness"]) == len(row["types_helpfulness"]) == n  # types parse too
    checked = len(judged) + len(result.dataset) * len(ASPECTS)
    print(f"constrained judgments that parsed into one rating per candidate: {checked}/{checked}")


def test_position_bias_judges_both_orders_greedily_with_a_sampled_same_order_control(preference_pipeline):
    from smolsynth.ultrafeedback import judge

    p = preference_pipeline
    common = dict(max_rationale_chars=16, progress=False, cache_dir=p["cache_dir"])
    bias = position_bias(p["judged"].dataset, sample=4, **common)
    print(bias)
    assert bias.report.rows_in == 4 and len(bias.rows) == 4 and bias.compared + bias.ties == 4
    assert 0.0 <= bias.flip_rate <= 1.0 and bias.changed <= bias.compared
    assert [s.rows_in for s in bias.steps] == [4, 4, 4, 4]  # greedy forward, greedy reversed, two sampled
    rows = bias.rows.to_list()
    # the forward judgment is greedy: judging the same rows greedily again gives the same ratings
    again = judge([{"instruction": r["instruction"], "generations": r["generations"]} for r in rows],
                  temperature=0.0, **common)
    assert [r["ratings"] for r in again.rows] == [r["forward_ratings"] for r in rows]
    for row in rows:
        assert len(row["reverse_ratings"]) == len(row["generations"])
        if row["changed"] is not None:
            assert row["changed"] == (row["forward_preferred"] != row["reverse_preferred"])
    assert bias.sampling_compared is not None and bias.sampling_changed <= bias.sampling_compared
    assert bias.sampling_changed == sum(1 for r in rows if r["changed_by_sampling"])
    assert any(r["sampled_ratings"] != r["resampled_ratings"] for r in rows)  # two seeds: the tiny model differs
    assert "Control, same order" in str(bias)
    quick = position_bias(p["judged"].dataset, sample=4, control=False, **common)
    assert quick.sampling_flip_rate is None and len(quick.steps) == 2 and quick.flip_rate == bias.flip_rate


def test_pool_responses_loads_different_models_one_at_a_time(tiny_path, tmp_path, monkeypatch):
    """Two real models (the tiny model with two seeds): each is loaded while the other is not in memory."""
    import smolsynth.models as models_module
    from smolsynth.models import tiny_model_path

    other = str(tiny_model_path(seed=1))
    models_module.clear_model_cache()
    in_memory_at_load: list[int] = []
    real_load = models_module._load

    def recording_load(model_id, **kwargs):  # the real loader, recording how many models were in memory before it
        in_memory_at_load.append(len(models_module._LOADED))
        return real_load(model_id, **kwargs)

    monkeypatch.setattr(models_module, "_load", recording_load)
    result = pool_responses(["Name a colour.", "Name a fruit."], ["smolsynth/tiny", other], max_new_tokens=16,
                            progress=False, cache_dir=str(tmp_path), allow_truncated=True)  # memory, not gates
    assert in_memory_at_load == [0, 0]
    assert result.dataset[0]["generation_models"] == ["smolsynth/tiny", other]
    assert result.dataset[0]["generation_sources"] == ["pool", "pool"]
    assert [r.model for r in result.steps] == ["smolsynth/tiny", other]


def test_trl_format_detection_is_the_same_under_every_hash_seed(preference_pipeline, tiny_path, tmp_path):
    path = tmp_path / "pairs"
    preference_pipeline["pairs"].dataset.save_to_disk(str(path))
    code = (
        "import json, sys, datasets\n"
        "from trl.data_utils import apply_chat_template, is_conversational\n"
        "from smolsynth.models import load_tokenizer\n"
        f"ds = datasets.load_from_disk({str(path)!r})\n"
        "tok = load_tokenizer('smolsynth/tiny')\n"
        "rows = [ds[i] for i in range(3)]\n"
        "print(json.dumps([[is_conversational(r), apply_chat_template(r, tok)] for r in rows], sort_keys=True))\n")
    answers = set()
    running = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env={**os.environ, "PYTHONHASHSEED": seed, "HF_HUB_OFFLINE": "1"})
               for seed in ("0", "1", "2", "3")]
    for proc in running:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
        answers.add(out.strip().splitlines()[-1])
    assert len(answers) == 1
    (answer,) = answers
    for conversational, rendered in json.loads(answer):
        assert conversational is True
        assert set(rendered) >= {"prompt", "chosen", "rejected"} and "<|im_start|>user" in rendered["prompt"]


def test_the_pairs_train_a_few_dpo_steps_on_the_tiny_model(preference_pipeline, tmp_path):
    from smolsynth.training import dpo

    result = dpo(preference_pipeline["pairs"].dataset, model="smolsynth/tiny", output_dir=str(tmp_path / "dpo"),
                 max_steps=2)
    assert result.metrics["train_rows"] + result.metrics["eval_rows"] == len(preference_pipeline["pairs"].dataset)
    assert result.metrics["dropped_rows"] == {}
    assert (tmp_path / "dpo" / "config.json").exists()


@pytest.mark.parametrize(("call", "match"), [
    (lambda: pool_responses(["Hi"], ["smolsynth/tiny"]), "two or more generators"),
    (lambda: pool_responses([], None), "empty"),
    (lambda: pool_responses(["Hi"], [3, 4]), "generators\\[0\\]"),
    (lambda: judge([{"instruction": "Hi", "generations": ["a", "b"]}], "style"), "aspect='style'"),
    (lambda: judge([{"instruction": "Hi"}]), "generations"),
    (lambda: judge([{"instruction": "Hi", "generations": "a"}]), "list of candidate answers"),
    (lambda: position_bias([{"instruction": "Hi", "generations": ["a", "b"]}], sample=0), "sample=0"),
])
def test_bad_input_fails_early_with_the_fix(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


def test_evolve_quality_rejects_unknown_directions():
    from smolsynth.preferences import evolve_quality

    with pytest.raises(ValueError, match="directions='shorter' is not one of 'helpfulness', 'relevance', 'deepening'"):
        evolve_quality([{"instruction": "Hi", "generations": ["a", "b"]}], ["shorter"])
