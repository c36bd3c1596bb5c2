"""Every exercise of notebook 08 with a correct, several incorrect and a not-attempted answer, on real objects: the
notebook's own solution and starter cells run as a learner would run them, against a real ``transformers serve`` on
loopback (the tiny model), and a real recipe run folder. Incorrect feedback never contains the answer."""

from __future__ import annotations

import copy
import functools
import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from exercise_harness import exercise_tests, private_home, solution_with, source_cells

from smolsynth.exercises import ____, nb08

NOTEBOOK = "08_beyond"
SERVING = all(importlib.util.find_spec(m) for m in ("fastapi", "uvicorn"))
pytestmark = pytest.mark.skipif(not SERVING, reason="needs transformers' serving extra (fastapi, uvicorn)")


@pytest.fixture(scope="module")
def made(tmp_path_factory, tiny_path) -> dict[str, Any]:
    import pandas as pd

    import smolsynth
    from smolsynth.cards import dataset_card
    from smolsynth.generation import generate, llm_for
    from smolsynth.pipelines import build_pipeline
    from smolsynth.runner import run_pipeline
    from smolsynth.ultrafeedback import judge_llm
    from smolsynth.recipes import run_recipe
    from smolsynth.servers import LocalServer, ServerLLM

    folder = tmp_path_factory.mktemp("nb08-data")
    with private_home(tmp_path_factory, tiny_path, "nb08"), LocalServer("smolsynth/tiny") as server:
        namespace = {"____": ____, "ex": nb08, "SEED": 0, "MAX_NEW_TOKENS": 16, "TINY": True, "folder": folder,
                     "server": server, "generate": generate, "run_recipe": run_recipe, "dataset_card": dataset_card,
                     "ServerLLM": ServerLLM, "smolsynth": smolsynth, "model_id": "smolsynth/tiny",
                     "tasks": smolsynth.import_distilabel("distilabel.steps.tasks"), "pd": pd, "llm_for": llm_for,
                     "judge_llm": judge_llm, "build_pipeline": build_pipeline, "run_pipeline": run_pipeline}
        out = {"folder": folder, "server": server}
        for tag in ("solution", "starter"):
            cells = {}
            for name, code in source_cells(NOTEBOOK, tag).items():
                scope = dict(namespace)
                exec(compile(code, f"<{NOTEBOOK} {name}>", "exec"), scope)
                cells[name] = {var: scope[var] for var in getattr(nb08, name).variables}
            out[tag] = cells
        # other answers, made on the same server while it runs
        out["local"] = generate(["A?", "B?", "C?"], model="smolsynth/tiny", max_new_tokens=8, allow_truncated=True,
                                progress=False)
        out["two"] = generate(["A?", "B?"], llm=server.llm(generation_kwargs={"max_new_tokens": 8}),
                              allow_truncated=True, progress=False)
        out["other_llm"] = server.llm()
        shipped = folder / "shipped"
        run_recipe("instructions", shipped, progress=False)  # as shipped: 6 instructions, answers, 2 SFT steps
        out["shipped_run"] = shipped
        one = folder / "one-step"
        run_recipe({"name": "one", "step": [{"kind": "magpie", "rows": 2, "max_new_tokens": 8,
                                             "allow_truncated": True}]}, one, progress=False)
        out["one_step"] = one
    dead = ServerLLM(base_url=server.base_url, model=server.model, api_key_env=None, timeout=2, max_retries=0)
    out["dead_llm"] = dead
    out["dead"] = generate(["A?", "B?", "C?"], llm=dead, progress=False)  # the server has stopped
    return out


_q1, _q2, _q3, _q4 = (functools.partial(solution_with, name=name) for name in ("q1", "q2", "q3", "q4"))


def _pipeline(rows=3, judge=True, **answer):
    """A pipeline built as the learner builds one (not run): ``rows`` instructions, answers, then the judge."""
    from distilabel.steps.tasks import TextGeneration, UltraFeedback

    from smolsynth.generation import llm_for
    from smolsynth.pipelines import build_pipeline
    from smolsynth.ultrafeedback import judge_llm

    settings = {"system_prompt": "Answer briefly.", "num_generations": 2, "group_generations": True, **answer}
    steps = [TextGeneration(llm=llm_for("smolsynth/tiny", max_new_tokens=8), **settings)]
    steps.append(UltraFeedback(llm=judge_llm(2, model="smolsynth/tiny"), input_mappings={"generations": "generation"})
                 if judge else TextGeneration(llm=llm_for("smolsynth/tiny", max_new_tokens=8)))
    return {"my_pipeline": build_pipeline([{"instruction": f"Q{i}?"} for i in range(rows)], steps)}


def _rated(m, edit):
    rows = copy.deepcopy(m["solution"]["q3"]["my_rated"])
    for row in rows:
        edit(row)
    return _q3(m, my_rated=rows)


def _recipe(m, edit):
    recipe = copy.deepcopy(m["solution"]["q1"]["my_recipe"])
    edit(recipe)
    return {"my_recipe": recipe}


def _unfinished(m):
    run = Path(m["folder"]) / "unfinished"
    if not run.exists():
        import shutil

        shutil.copytree(m["solution"]["q4"]["my_run"], run)
        record = json.loads((run / "run.json").read_text())
        record.pop("finished")
        (run / "run.json").write_text(json.dumps(record))
    return run


CASES: dict[str, dict[str, Any]] = {
    "08_beyond.q1": {
        "exercise": nb08.q1,
        "correct": _q1,
        "incorrect": {
            "a typo in a setting": (lambda m: _recipe(m, lambda r: r["step"][1].update(temprature=0.5)),
                                    "unknown setting(s) ['temprature']"),
            "answers first": (lambda m: _recipe(m, lambda r: r["step"].reverse()), "reads the rows of a step"),
            "too few rows": (lambda m: _recipe(m, lambda r: r["step"][0].update(rows=2)), "ask for at least 4"),
            "no system prompt": (lambda m: _recipe(m, lambda r: r["step"][1].pop("system_prompt")),
                                 "has no `system_prompt`"),
            "one step": (lambda m: _recipe(m, lambda r: r["step"].pop()), "make them ['magpie', 'answers']"),
            "bad TOML": (lambda m: {"my_recipe": "[[step]]\nkind = magpie"}, "not valid TOML"),
            "not a recipe": (lambda m: {"my_recipe": 42}, "it should be a recipe"),
        },
        "not_attempted": [lambda m: m["starter"]["q1"], lambda m: {"my_recipe": ____}],
    },
    "08_beyond.q2": {
        "exercise": nb08.q2,
        "correct": _q2,
        "incorrect": {
            "a local model": (lambda m: _q2(m, my_answers=m["local"]), "was not made by `my_llm`"),
            "another server llm": (lambda m: _q2(m, my_llm=m["other_llm"]), "was not made by `my_llm`"),
            "two answers": (lambda m: _q2(m, my_answers=m["two"]), "send at least 3"),
            "server stopped": (lambda m: _q2(m, my_llm=m["dead_llm"], my_answers=m["dead"]),
                               "Is the server running"),
            "not a server llm": (lambda m: _q2(m, my_llm="smolsynth/tiny"), "it should be a ServerLLM"),
            "rows, not a result": (lambda m: _q2(m, my_answers=m["solution"]["q2"]["my_answers"].rows),
                                   "it should be what `generate"),
        },
        "not_attempted": [lambda m: m["starter"]["q2"], lambda m: {**_q2(m), "my_answers": ____}],
    },
    "08_beyond.q3": {
        "exercise": nb08.q3,
        "correct": _q3,
        "incorrect": {
            "not a pipeline": (lambda m: _q3(m, my_pipeline="my pipeline"), "it should be what `build_pipeline"),
            "answers only": (lambda m: _q3(m, my_pipeline=_pipeline(judge=False)["my_pipeline"]),
                             "then UltraFeedback (the judge)"),
            "one answer per instruction": (lambda m: _q3(m, my_pipeline=_pipeline(num_generations=1)["my_pipeline"]),
                                           "num_generations=2"),
            "no system prompt": (lambda m: _q3(m, my_pipeline=_pipeline(system_prompt=None)["my_pipeline"]),
                                 "has no `system_prompt`"),
            "two instructions": (lambda m: _q3(m, my_pipeline=_pipeline(rows=2)["my_pipeline"]), "at least 3"),
            "rows of another pipeline": (lambda m: _rated(m, lambda r: r.update(instruction="Another question?")),
                                         "did not read"),
            "answers, not ratings": (lambda m: _rated(m, lambda r: r.pop("ratings")), "lack one rating per answer"),
            "no rows": (lambda m: _q3(m, my_rated=[]), "has no rows"),
            "not rows": (lambda m: _q3(m, my_rated="rows"), "my_rated is a str"),
        },
        "not_attempted": [lambda m: m["starter"]["q3"], lambda m: {**_q3(m), "my_rated": ____}],
    },
    "08_beyond.q4": {
        "exercise": nb08.q4,
        "correct": _q4,
        "incorrect": {
            "not a run folder": (lambda m: _q4(m, my_run=m["folder"]), "it should be the folder"),
            "unfinished": (lambda m: _q4(m, my_run=_unfinished(m)), "has not finished"),
            "one step": (lambda m: _q4(m, my_run=m["one_step"]), "at least two"),
            "the card of another run": (lambda m: _q4(m, my_card=__import__("smolsynth.cards", fromlist=["x"])
                                                      .dataset_card(m["one_step"])), "is not the card of `my_run`"),
            "not a card": (lambda m: _q4(m, my_card="my card"), "should be the text"),
        },
        "not_attempted": [lambda m: m["starter"]["q4"], lambda m: {**_q4(m), "my_card": ____}],
    },
}

(test_every_exercise_has_test_cases, test_correct_answer_passes, test_incorrect_answer_is_explained_without_the_answer,
 test_not_attempted_answer) = exercise_tests(NOTEBOOK, CASES, fixture="made")


def test_a_shipped_recipe_unchanged_is_not_your_own(made) -> None:
    from smolsynth.cards import dataset_card

    shipped = made["shipped_run"]
    feedback = nb08.q4.evaluate(my_run=shipped, my_card=dataset_card(shipped))
    assert feedback.status == "incorrect" and "the shipped `instructions` recipe as it is" in feedback.message


def test_docstring_examples_run() -> None:
    import doctest

    assert doctest.testmod(nb08).failed == 0
