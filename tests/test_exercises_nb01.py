"""Notebook 01's exercises with a correct, an incorrect and a not-attempted answer, on real results of the tiny model
(real distilabel tasks through the runner). Incorrect feedback never contains the answer."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import pytest

from exercise_harness import exercise_tests

from smolsynth.exercises import ____, nb01
from smolsynth.instructions import rouge_l

NOTEBOOK = "01_instructions"
SEEDS = [
    "Suggest a vegetable that grows well on a shady balcony.",
    "Explain when to water tomato plants in summer.",
    "Give two natural ways to keep aphids off roses.",
    "Describe how to start a compost bin in a small garden.",
    "List three herbs that are easy to grow indoors.",
    "Explain why some leaves turn yellow in autumn.",
]
EVOL_SEEDS = ["Explain how to repot a cactus.", "Suggest a weekly watering plan for houseplants.",
              "Describe the difference between annual and perennial plants."]
FAST = {"max_new_tokens": 16, "progress": False, "cache": False}


@pytest.fixture(scope="module")
def made(tiny_path) -> dict[str, Any]:
    """What a learner's cells would hold, made once."""
    from smolsynth.instructions import evol_instruct, filter_instructions, magpie, self_instruct, to_sft

    mag = magpie(3, response_temperature=0.7, **FAST)
    si = self_instruct(SEEDS, rounds=1, prompts_per_round=2, temperature=1.0, **FAST)
    evo = evol_instruct(EVOL_SEEDS, rounds=1, response_temperature=0.7, judge=False, **FAST)  # the tiny judge says Equal to all three
    # a filter result with known too_similar rows, to check the learner's selection of them
    similar = filter_instructions(["Explain when to water tomato plants in summer, please."], references=SEEDS)
    si_with_similar = dataclasses.replace(si, dropped_rows=similar.dropped_rows,
                                          report=dataclasses.replace(si.report, rows_in=si.report.rows_out + 1,
                                                                     dropped={"too_similar": 1}))
    lost = [{**r, "reason": "truncated"} for r in mag.rows]  # the same run with every row dropped
    none_survived = dataclasses.replace(mag, rows=[], dropped_rows=mag.dropped_rows + lost, report=dataclasses.replace(
        mag.report, rows_out=0, dropped={**mag.report.dropped, "truncated": mag.report.dropped.get("truncated", 0)
                                         + len(lost)}))
    return {
        "magpie": mag, "sft": to_sft(mag.dataset), "none_survived": none_survived,
        "instructions_only": magpie(3, only_instruction=True, **FAST),
        "si": si, "si_similar": si_with_similar,
        "too_similar": similar.dropped,
        "evo": evo, "evo_sft": to_sft(evo.dataset),
        "to_sft": to_sft,
    }


CASES: dict[str, dict[str, Any]] = {
    "01_instructions.q1": {
        "exercise": nb01.q1,
        "correct": lambda m: {"my_magpie": m["magpie"], "my_sft": m["sft"]},
        "incorrect": {
            "a dataset, not a result": (lambda m: {"my_magpie": m["magpie"].dataset, "my_sft": m["sft"]},
                                        "magpie(...)"),
            "not magpie": (lambda m: {"my_magpie": m["si"], "my_sft": m["sft"]}, "not made by `magpie"),
            "no answers": (lambda m: {"my_magpie": m["instructions_only"],
                                        "my_sft": m["to_sft"](m["instructions_only"].dataset,
                                                              response_column="instruction")}, "generation"),
            "prompt/completion": (lambda m: {"my_magpie": m["magpie"], "my_sft": m["to_sft"](
                m["magpie"].dataset, format="prompt_completion")}, "only a"),
            "rows missing": (lambda m: {"my_magpie": m["magpie"],
                                        "my_sft": m["sft"].dataset.select(range(len(m["sft"].dataset) - 1))},
                             "every row once"),
            "other data": (lambda m: {"my_magpie": m["magpie"], "my_sft": m["evo_sft"]}, "not in `my_magpie`"),
            "nothing survived": (lambda m: {"my_magpie": m["none_survived"], "my_sft": m["to_sft"]([])},
                                 "no conversation"),
        },
        "not_attempted": [lambda m: {"my_magpie": ____, "my_sft": ____},
                          lambda m: {"my_magpie": m["magpie"], "my_sft": ____}],
    },
    "01_instructions.q2": {
        "exercise": nb01.q2,
        "correct": lambda m: {"my_seeds": SEEDS, "my_self_instruct": m["si"],
                              "my_too_similar": [r for r in m["si"].dropped_rows if r["reason"] == "too_similar"]},
        "incorrect": {
            "too few seeds": (lambda m: {"my_seeds": SEEDS[:3], "my_self_instruct": m["si"], "my_too_similar": []},
                              "at least 6"),
            "repeated seed": (lambda m: {"my_seeds": SEEDS[:5] + [SEEDS[0].upper()], "my_self_instruct": m["si"],
                                         "my_too_similar": []}, "the same"),
            "other seeds": (lambda m: {"my_seeds": list(reversed(SEEDS)), "my_self_instruct": m["si"],
                                       "my_too_similar": []}, "not made from `my_seeds`"),
            "not a result": (lambda m: {"my_seeds": SEEDS, "my_self_instruct": m["si"].dataset,
                                        "my_too_similar": []}, "self_instruct(...)"),
            "missed the removed rows": (lambda m: {"my_seeds": SEEDS, "my_self_instruct": m["si_similar"],
                                                   "my_too_similar": []}, "removed as too similar"),
            "made-up rows of the right count": (lambda m: {"my_seeds": SEEDS, "my_self_instruct": m["si_similar"],
                                                           "my_too_similar": [{"reason": "too_similar"}]},
                                                "not the rows"),
        },
        "not_attempted": [lambda m: {"my_seeds": ____, "my_self_instruct": ____, "my_too_similar": ____},
                          lambda m: {"my_seeds": SEEDS, "my_self_instruct": m["si"], "my_too_similar": ____}],
    },
    "01_instructions.q3": {
        "exercise": nb01.q3,
        "correct": lambda m: {"my_evol_seeds": EVOL_SEEDS, "my_evolved": m["evo"], "my_evol_sft": m["evo_sft"]},
        "incorrect": {
            "too few seeds": (lambda m: {"my_evol_seeds": EVOL_SEEDS[:2], "my_evolved": m["evo"],
                                         "my_evol_sft": m["evo_sft"]}, "at least 3"),
            "other seeds": (lambda m: {"my_evol_seeds": SEEDS[:3], "my_evolved": m["evo"],
                                       "my_evol_sft": m["evo_sft"]}, "not made from `my_evol_seeds`"),
            "sft of other data": (lambda m: {"my_evol_seeds": EVOL_SEEDS, "my_evolved": m["evo"],
                                             "my_evol_sft": m["sft"].dataset.select([])
                                             if len(m["evo"].dataset) else m["sft"]}, "survived"),
            "numbers changed": (lambda m: {"my_evol_seeds": EVOL_SEEDS, "my_evolved": dataclasses.replace(
                m["evo"], report=dataclasses.replace(m["evo"].report, rows_in=m["evo"].report.rows_in + 5)),
                "my_evol_sft": m["evo_sft"]}, "do not add up"),
        },
        "not_attempted": [lambda m: {"my_evol_seeds": ____, "my_evolved": ____, "my_evol_sft": ____},
                          lambda m: {"my_evol_seeds": EVOL_SEEDS, "my_evolved": m["evo"], "my_evol_sft": ____}],
    },
    "01_instructions.q4": {
        "exercise": nb01.q4,
        "correct": lambda m: {"my_novelty_filter": _novelty_filter},
        "incorrect": {
            "not a function": (lambda m: {"my_novelty_filter": [SEEDS[0]]}, "should be a function"),
            "keeps everything": (lambda m: {"my_novelty_filter": lambda c, p, threshold=0.7: list(c)},
                                 "Case 2"),
            "keeps nothing": (lambda m: {"my_novelty_filter": lambda c, p, threshold=0.7: []}, "Case 2"),
            "the pool does not grow": (lambda m: {"my_novelty_filter": lambda c, p, threshold=0.7: [
                t for t in c if all(rouge_l(r, t) <= threshold for r in p)]}, "Case 3"),
            "0.7 counted as too similar": (lambda m: {"my_novelty_filter": functools.partial(
                _novelty_filter, keep=lambda score, threshold: score < threshold)}, "Case 4"),
            "threshold ignored": (lambda m: {"my_novelty_filter": lambda c, p, threshold=0.7: _novelty_filter(c, p)},
                                  "Case 5"),
            "only the last reference": (lambda m: {"my_novelty_filter": functools.partial(_novelty_filter,
                                                                                      last_only=True)}, "Case 6"),
            "returns a set": (lambda m: {"my_novelty_filter": lambda c, p, threshold=0.7: set(c)}, "list of kept"),
            "raises": (lambda m: {"my_novelty_filter": lambda c, p, threshold=0.7: c[0]}, "IndexError"),
        },
        "not_attempted": [lambda m: {"my_novelty_filter": ____}, lambda m: {}],
    },
}


def _novelty_filter(candidates, pool, threshold=0.7, keep=lambda score, threshold: score <= threshold,
                    last_only=False):
    references, kept = list(pool), []
    for text in candidates:
        if all(keep(rouge_l(r, text), threshold) for r in (references[-1:] if last_only else references)):
            kept.append(text)
            references.append(text)
    return kept


(test_every_exercise_has_test_cases, test_correct_answer_passes,
 test_incorrect_answer_is_explained_without_the_answer, test_not_attempted_answer) = exercise_tests(
    NOTEBOOK, CASES, fixture="made")


def test_q2_accepts_the_removed_rows_as_a_dataset_or_a_list(made: dict[str, Any]) -> None:
    for removed in (made["too_similar"], made["too_similar"].to_list(), made["too_similar"].to_pandas()):
        feedback = nb01.q2.evaluate(my_seeds=SEEDS, my_self_instruct=made["si_similar"], my_too_similar=removed)
        assert feedback.status == "correct" and "removed 1" in feedback.message, feedback
