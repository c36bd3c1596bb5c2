"""Every exercise of the course with a correct, an incorrect and a not-attempted answer, on real results of the tiny
model (a real tokenizer, real generation, real distilabel tasks). Incorrect feedback never contains the answer."""

from __future__ import annotations

from typing import Any, Callable

import pytest

from exercise_harness import exercise_tests

from smolsynth.exercises import ____, exercise_modules, nb00

INSTRUCTIONS = ["Name a colour.", "Name a fruit.", "Name a tree."]


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory, tiny_path) -> dict[str, Any]:
    """Real results on the tiny model, made once: what a learner's cells would hold."""
    from smolsynth.generation import generate
    from smolsynth.llm import LocalLLM
    from smolsynth.runner import run
    from smolsynth.verbosity import import_distilabel

    cache = str(tmp_path_factory.mktemp("cache"))
    tasks = import_distilabel("distilabel.steps.tasks")
    llm = LocalLLM("smolsynth/tiny", generation_kwargs={"max_new_tokens": 8})
    task = tasks.TextGeneration(llm=llm, system_prompt="Answer in one word.")
    plain = tasks.TextGeneration(llm=llm)
    return {
        "result": generate(INSTRUCTIONS, model="smolsynth/tiny", max_new_tokens=32, cache_dir=cache, progress=False),
        "other": generate(["Say hi.", "Say bye.", "Say yes."], model="smolsynth/tiny", max_new_tokens=32,
                          cache_dir=cache, progress=False),
        "task": task,
        "task_result": run(task, [{"instruction": i} for i in INSTRUCTIONS], cache_dir=cache, progress=False),
        "one_row": run(task, [{"instruction": "Hi"}], cache_dir=cache, progress=False),
        "plain": plain,
        "plain_result": run(plain, [{"instruction": i} for i in INSTRUCTIONS[:2]], cache_dir=cache, progress=False),
        "tasks": tasks,
    }


Answers = Callable[[dict[str, Any]], dict[str, Any]]

CASES: dict[str, dict[str, Any]] = {
    "00_setup.q1": {
        "exercise": nb00.q1,
        "correct": lambda g: {"my_instructions": INSTRUCTIONS, "my_result": g["result"]},
        "incorrect": {
            "a string, not a list": (lambda g: {"my_instructions": "Name a colour.", "my_result": g["result"]},
                                     "list of strings"),
            "too few": (lambda g: {"my_instructions": INSTRUCTIONS[:2], "my_result": g["result"]}, "at least 3"),
            "duplicates": (lambda g: {"my_instructions": ["A?", "a?", "B?"], "my_result": g["result"]}, "the same"),
            "empty one": (lambda g: {"my_instructions": ["A?", " ", "B?"], "my_result": g["result"]}, "empty"),
            "not a result": (lambda g: {"my_instructions": INSTRUCTIONS, "my_result": ["text"]}, "generate(...)"),
            "other list": (lambda g: {"my_instructions": INSTRUCTIONS, "my_result": g["other"]}, "another list"),
            "rows missing": (lambda g: {"my_instructions": INSTRUCTIONS + ["Name a bird."],
                                        "my_result": g["result"]}, "whole list"),
            "no generation column": (lambda g: {"my_instructions": INSTRUCTIONS,
                                                "my_result": g["result"].dataset.remove_columns("generation")},
                                     "generation"),
        },
        "not_attempted": [lambda g: {"my_instructions": ____, "my_result": ____},
                          lambda g: {"my_instructions": INSTRUCTIONS, "my_result": ____},
                          lambda g: {"my_instructions": ["A?", ____, "B?"], "my_result": g["result"]}],
    },
    "00_setup.q2": {
        "exercise": nb00.q2,
        "correct": lambda g: {"my_task": g["task"], "my_task_result": g["task_result"]},
        "incorrect": {
            "no system prompt": (lambda g: {"my_task": g["plain"], "my_task_result": g["plain_result"]},
                                 "no system prompt"),
            "not a task": (lambda g: {"my_task": "TextGeneration", "my_task_result": g["task_result"]},
                           "TextGeneration"),
            "one row": (lambda g: {"my_task": g["task"], "my_task_result": g["one_row"]}, "at least two"),
            "result of generate, not run": (lambda g: {"my_task": g["task"],
                                                       "my_task_result": g["result"].dataset.remove_columns(
                                                           "generation")}, "generation"),
            "system prompt in the wrong place": (
                lambda g: {"my_task": _task_with_template(g), "my_task_result": g["task_result"]},
                "does not start with your system prompt"),
        },
        "not_attempted": [lambda g: {"my_task": ____, "my_task_result": ____},
                          lambda g: {"my_task": g["task"], "my_task_result": ____}],
    },
}


def _task_with_template(g: dict[str, Any]) -> Any:
    """A task whose system prompt never reaches the model: every row carries its own empty-ish override."""
    task = g["tasks"].TextGeneration(llm=g["task"].llm, system_prompt="Be brief.")
    task.load()
    task.system_prompt = "Be brief."
    original = task.format_input
    task.__dict__["format_input"] = lambda row: original({**row, "system_prompt": "Something else."})
    return task


(test_every_exercise_has_test_cases, test_correct_answer_passes,
 test_incorrect_answer_is_explained_without_the_answer, test_not_attempted_answer) = exercise_tests(
    "00_setup", CASES, fixture="generated")


def test_every_exercise_module_has_its_test_file() -> None:
    """Each nbNN module is tested in tests/test_exercises_nbNN.py, whose own meta-test checks it has every case."""
    from pathlib import Path

    here = Path(__file__).parent
    for module in exercise_modules().values():
        short = module.__name__.rsplit(".", 1)[-1]
        assert (here / f"test_exercises_{short}.py").exists(), f"{module.__name__}: no tests/test_exercises_{short}.py"


def test_q1_counts_dropped_rows(generated: dict[str, Any]) -> None:
    """A row the engine dropped (with a reason) still counts as generated from the learner's list."""
    from smolsynth.rows import Result

    result = generated["result"]
    partial = Result(rows=result.rows[:2], dropped_rows=[{**result.rows[2], "reason": "truncated"}],
                     report=result.report)
    feedback = nb00.q1.evaluate(my_instructions=INSTRUCTIONS, my_result=partial)
    assert feedback.status == "correct" and "1 dropped" in feedback.message
