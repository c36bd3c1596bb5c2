"""smolsynth.distillation: the trait, the teacher, the pairs and the two measurements, on real models (no mocks).

The tiny model proves the machinery (its text is noise, but the teacher's priming makes every answer show the
trait). What the real model writes is tested in tests/test_real_model.py; what training does with it is measured by
benchmarks/training_effect.py.
"""

from __future__ import annotations

import pytest

from conftest import make_pairs
from smolsynth import distillation as dist
from smolsynth.distillation import OPENING, Trait


def test_the_trait_is_an_opening_that_can_be_checked_and_stripped():
    assert OPENING.shows("Great question! Rome.") and OPENING.shows("  great QUESTION! rome")
    assert not OPENING.shows("Rome. Great question!") and not OPENING.shows("") and not OPENING.shows(None)
    assert OPENING.strip("Great question! the capital is Rome.") == "The capital is Rome."
    assert OPENING.strip("Rome.") == "Rome."
    context = OPENING.teacher_messages("Why is the sky blue?")
    assert context[0]["role"] == "system" and context[-1] == {"role": "user", "content": "Why is the sky blue?"}
    assert all(OPENING.shows(m["content"]) for m in context if m["role"] == "assistant")  # the demonstrations


def test_training_prompts_put_the_learners_first_and_never_a_held_out_one():
    own = [{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Why is the sea salty?"},
                         {"role": "assistant", "content": "Minerals."}]},
           {"messages": [{"role": "user", "content": dist.HELD_OUT_PROMPTS[0]},
                         {"role": "assistant", "content": "Sleep."}]}]
    prompts = dist.training_prompts(own, n=5)
    assert prompts[0] == "Why is the sea salty?" and len(prompts) == 5 and len(set(prompts)) == 5
    assert not set(prompts) & set(dist.HELD_OUT_PROMPTS)
    assert not set(dist.TRAINING_PROMPTS) & set(dist.HELD_OUT_PROMPTS)
    assert len(dist.training_prompts(n=100)) == len(dist.TRAINING_PROMPTS)


def test_pairs_differ_only_by_the_trait_and_rows_without_it_are_counted():
    rows = [{"messages": [{"role": "user", "content": "Q1?"}, {"role": "assistant", "content": "Great question! A1."}]},
            {"messages": [{"role": "user", "content": "Q2?"}, {"role": "assistant", "content": "A2."}]},
            {"messages": [{"role": "user", "content": "Q3?"}, {"role": "assistant", "content": "Great question!"}]},
            {"messages": [{"role": "user", "content": "Q4?"},
                          {"role": "assistant", "content": "Great question! Great question! A4."}]}]
    pairs = dist.trait_pairs(rows)
    assert pairs.rows == [{"prompt": [{"role": "user", "content": "Q1?"}],
                           "chosen": [{"role": "assistant", "content": "Great question! A1."}],
                           "rejected": [{"role": "assistant", "content": "A1."}]}]
    assert pairs.report.dropped == {"trait_missing": 1, "empty_turn": 1, "trait_in_rejected": 1}


def test_the_teacher_primes_every_answer_and_hands_over_the_bare_conversation(engine_home):
    data = dist.teacher_answers(["Why is the sea salty?", "Name a colour."], model="smolsynth/tiny", samples=2,
                                max_new_tokens=6, progress=False)
    for row in data.rows:
        user, answer = row["messages"]
        assert user["role"] == "user" and answer["role"] == "assistant" and OPENING.shows(answer["content"])
    assert data.report.rows_in == 2 and data.report.rows_out + sum(data.report.dropped.values()) == 2
    assert set(data.report.dropped) <= {"truncated", "empty_output"}
    assert data.report.output_tokens > 0
    with pytest.raises(ValueError, match="samples"):
        dist.teacher_answers(["Hi?"], model="smolsynth/tiny", samples=0)


def test_cut_off_tries_are_dropped_as_truncated(engine_home):
    # the tiny model never ends a turn within 2 tokens: every try is cut off, nothing is kept, all is counted
    data = dist.teacher_answers(["Why is the sea salty?", "Name a colour."], model="smolsynth/tiny", samples=2,
                                max_new_tokens=2, progress=False)
    assert data.rows == [] and data.report.dropped == {"truncated": 2}


def test_trait_rate_counts_the_models_own_answers(engine_home):
    rate = dist.trait_rate("smolsynth/tiny", dist.HELD_OUT_PROMPTS[:3], max_new_tokens=4, progress=False)
    assert rate.rate == 0.0 and len(rate.answers) == len(rate.shows) == 3 and "0 of 3" in str(rate)
    assert list(rate.table().columns) == ["prompt", "answer starts with", "shows", "finished"]
    assert len(rate.finished) == 3


def test_preference_accuracy_is_chance_at_the_start_and_flips_with_the_pairs(trained_sft, trained_dpo):
    pairs = make_pairs(8)
    start = dist.preference_accuracy(trained_sft.output_dir, pairs, reference=trained_sft.output_dir)
    assert start == 0.5  # the policy is its reference: every reward is 0, every pair a tie
    after = dist.preference_accuracy(trained_dpo.output_dir, pairs, reference=trained_sft.output_dir)
    swapped = pairs.map(lambda r: {"chosen": r["rejected"], "rejected": r["chosen"]})
    flipped = dist.preference_accuracy(trained_dpo.output_dir, swapped, reference=trained_sft.output_dir)
    assert after > 0.5  # DPO trained on these pairs ranks their chosen answers higher
    assert after + flipped == pytest.approx(1.0)


def test_a_trait_of_your_own_works_the_same_way(engine_home):
    mine = Trait(name="greeting", opening="Ahoy!", rule="You are a pirate. Start every answer with 'Ahoy!'.",
                 examples=(("Hi?", "Ahoy! Hello, sailor."),))
    data = dist.teacher_answers(["Where is the treasure?"], mine, model="smolsynth/tiny", max_new_tokens=6,
                                progress=False)
    assert all(mine.shows(r["messages"][1]["content"]) for r in data.rows)
    assert all(p["chosen"][0]["content"].startswith("Ahoy!") for p in dist.trait_pairs(data.rows, mine).rows)


def test_the_training_effect_benchmark_runs_end_to_end_and_prints_the_four_numbers(engine_home, tmp_path, capsys):
    """benchmarks/training_effect.py on the tiny model (plumbing: its text is noise, so the rates stay 0)."""
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "benchmarks" / "training_effect.py"
    spec = importlib.util.spec_from_file_location("training_effect", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.main(["--model", "smolsynth/tiny", "--prompts", "6", "--held-out", "4", "--max-new-tokens", "8",
                          "--sft-epochs", "1", "--dpo-epochs", "1", "--out", str(tmp_path)])
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.split() == [f"{k}={v:.3f}" for k, v in result.items()]
    assert list(result) == ["sft_trait_before", "sft_trait_after", "dpo_pref_acc_before", "dpo_pref_acc_after"]
    assert result["dpo_pref_acc_before"] == 0.5 and (tmp_path / "teacher.jsonl").exists()
