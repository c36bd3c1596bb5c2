"""Decontamination against the course's evaluation prompts: planted copies and light edits are found, unrelated rows
and common phrases are not."""

from __future__ import annotations

import doctest

import pytest

import smolsynth.contamination
from smolsynth.contamination import contamination_report, decontaminate, evaluation_prompts
from smolsynth.distillation import HELD_OUT_PROMPTS

CLEAN = ["Write a haiku about autumn leaves.", "How do I reverse a linked list in Python?",
         "What is the difference between a crocodile and an alligator?", "Explain how rain forms in clouds."]


def test_evaluation_prompts_are_the_held_out_prompts() -> None:
    assert evaluation_prompts() == tuple(HELD_OUT_PROMPTS)


def test_copies_and_edits_of_eval_prompts_are_dropped_and_named() -> None:
    planted = [HELD_OUT_PROMPTS[0],                                               # a copy
               HELD_OUT_PROMPTS[1].upper(),                                       # case changed
               "Hey, " + HELD_OUT_PROMPTS[4].lower() + " Thanks in advance!",     # inside a longer request
               "Please answer: why do onions make you cry?"]                      # a short prompt, whole
    rows = [{"instruction": text} for text in CLEAN + planted]
    result = decontaminate(rows)
    assert [row["instruction"] for row in result.rows] == CLEAN
    assert result.report.dropped == {"contaminated": 4}
    assert [row["contaminated_by"] for row in result.dropped_rows] == [
        HELD_OUT_PROMPTS[0], HELD_OUT_PROMPTS[1], HELD_OUT_PROMPTS[4], "Why do onions make you cry?"]
    assert all(row["overlap"] for row in result.dropped_rows)
    report = contamination_report(rows)
    assert sorted(set(report["row"])) == [4, 5, 6, 7] and set(report.columns) == {"row", "text", "prompt", "overlap"}


def test_a_shared_common_phrase_is_not_contamination() -> None:
    # "what is the difference between a" is 6 words of an 8+ word prompt: under n, not a match
    rows = [{"instruction": "What is the difference between a frog and a toad?"}]
    assert decontaminate(rows).rows == rows
    assert decontaminate(rows, n=5).report.dropped == {"contaminated": 1}


def test_custom_prompts_and_column() -> None:
    rows = [{"text": "Name three planets of the solar system, please."}, {"text": "Name a color."}]
    result = decontaminate(rows, column="text", prompts=["Name three planets of the solar system."], n=4)
    assert [r["text"] for r in result.dropped_rows] == [rows[0]["text"]]
    assert result.params["n"] == 4


@pytest.mark.parametrize("kwargs, error, match", [
    ({"column": "text"}, ValueError, "column=<a text column>"),
    ({"prompts": "Why?"}, TypeError, "prompts must be a list"),
    ({"prompts": ["ok", ""]}, ValueError, r"prompts\[1\]"),
    ({"n": 0}, ValueError, "n"),
])
def test_bad_input_is_named(kwargs, error, match) -> None:
    with pytest.raises(error, match=match):
        decontaminate([{"instruction": "hi"}], **kwargs)


def test_doctests() -> None:
    result = doctest.testmod(smolsynth.contamination, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0
