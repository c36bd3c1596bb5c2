"""The gates for what real models do (smolsynth.gates), fed rows that must not become training data."""

from __future__ import annotations

import re

from smolsynth.gates import echoes_template, truncated


def test_cut_off_generations_are_dropped_and_counted(engine_home):
    from smolsynth.generation import generate

    result = generate(["Tell me about the sea.", "Name a bird."], model="smolsynth/tiny", max_new_tokens=1,
                      progress=False, cache=False)
    assert result.report.dropped.get("truncated", 0) + result.report.dropped.get("empty_output", 0) == 2
    assert result.rows == [] and {r["reason"] for r in result.dropped_rows} <= {"truncated", "empty_output"}
    kept = generate(["Tell me about the sea."], model="smolsynth/tiny", max_new_tokens=1, progress=False,
                    cache=False, allow_truncated=True)
    assert kept.report.dropped.get("truncated", 0) == 0


def test_template_echo_is_dropped_by_the_runner_for_any_task():
    from smolsynth.runner import check_row
    from smolsynth.verbosity import import_distilabel

    from smolsynth.llm import LocalLLM

    task = import_distilabel("distilabel.steps.tasks").TextGeneration(llm=LocalLLM("smolsynth/tiny"))
    assert check_row(task, {"instruction": "Hi", "generation": "#Rewritten Response#: Hello!"}) == "template_echo"
    assert check_row(task, {"instruction": "Hi", "generation": "Rewritten Response:\n\nHello"}) == "template_echo"
    assert check_row(task, {"instruction": "Hi", "generation": "Hello! How can I help?"}) is None


def test_placeholder_rationales_cannot_be_written_and_are_caught_if_they_appear():
    from smolsynth.ultrafeedback import ultrafeedback_regex

    grammar = ultrafeedback_regex(1)
    assert not re.fullmatch(grammar, "#### Output for Text 1\nRating: 4\nRationale: [Rationale]")
    assert re.fullmatch(grammar, "#### Output for Text 1\nRating: 4\nRationale: Clear and correct.")
    assert echoes_template(["Clear.", "[Rationale for the rating in short sentences]"])
    honesty = ultrafeedback_regex(1, aspect="honesty")
    assert re.fullmatch(honesty, "#### Output for Text 1\nRating: N/A\nRationale: A poem: honesty does not apply.")


def test_truncated_reads_the_finish_reasons_in_row_metadata():
    assert truncated({"statistics_x": {"finish_reasons": ["stop", "length"]}})
    assert not truncated({"statistics_x": {"finish_reasons": "stop"}, "raw_output_x": "length"})
