"""Every exercise of notebook 06 with a correct, several incorrect and a not-attempted answer, on real objects: the
notebook's own solution and starter cells run as a learner would run them (a tree the tiny model expanded, runs it
generated into a RunDataset, a Review saved to disk), and hidden records validated with the learner's schema.
Incorrect feedback never contains the answer."""

from __future__ import annotations

import copy
import functools
import shutil
from pathlib import Path
from typing import Any

import pytest

from exercise_harness import exercise_tests, private_home, solution_with, source_cells

from smolsynth.exercises import ____, nb06

NOTEBOOK = "06_topics_review"


def _is_short_question(text):
    return text.strip().endswith("?") and len(text.split()) <= 20


def _namespace(folder: Path, tree: Any) -> dict[str, Any]:
    """What the notebook has defined by its exercises section: the names its exercise cells use."""
    from smolsynth.generation import generate
    from smolsynth.records import TOOL_CALL_SCHEMA, validate_records
    from smolsynth.review import Review
    from smolsynth.runs import RunDataset
    from smolsynth.topics import TopicTree, leaf_prompts

    settings = dict(model="smolsynth/tiny", num_generations=2, max_new_tokens=16, temperature=0.8, seed=0,
                    allow_truncated=True, progress=False)
    return {"____": ____, "ex": nb06, "copy": copy, "shutil": shutil, "folder": folder, "tree": tree,
            "TopicTree": TopicTree, "TOOL_CALL_SCHEMA": TOOL_CALL_SCHEMA, "validate_records": validate_records,
            "RunDataset": RunDataset, "Review": Review, "generate": generate, "leaf_prompts": leaf_prompts,
            "settings": settings, "is_short_question": _is_short_question}


@pytest.fixture(scope="module")
def made(tmp_path_factory, tiny_path) -> dict[str, Any]:
    from smolsynth.topics import TopicTree

    folder = tmp_path_factory.mktemp("nb06-data")
    with private_home(tmp_path_factory, tiny_path, "nb06"):
        tree = TopicTree("Travel").add("Packing").add("Visas and passports")
        tree.expand(depth=2, per_node=2, model="smolsynth/tiny", progress=False)
        out = {"tree": tree, "folder": folder}
        for tag in ("solution", "starter"):
            cells = {}
            for name, code in source_cells(NOTEBOOK, tag).items():
                namespace = _namespace(folder, tree)
                exec(compile(code, f"<{NOTEBOOK} {name}>", "exec"), namespace)
                cells[name] = {var: namespace[var] for var in getattr(nb06, name).variables}
            out[tag] = cells
    return out


_q1, _q2, _q3 = (functools.partial(solution_with, name=name) for name in ("q1", "q2", "q3"))


def _untouched_tree(m):
    """A copy of the model's tree with enough leaves, but nothing of the learner's in it."""
    from smolsynth.topics import TopicTree

    tree = TopicTree.from_dict(m["tree"].to_dict())
    for node in tree.root.subtopics:
        node.source = "model"
    return tree


def _twice(m):
    tree = copy.deepcopy(m["solution"]["q1"]["my_tree"])
    from smolsynth.topics import Topic

    tree.root.subtopics.append(Topic("packing "))  # the same topic as "Packing", spelled otherwise
    return tree


def _looping(m):
    from smolsynth.topics import TopicTree

    return TopicTree("Travel").add("Money > Tips").add("Money > Cash").add("Food > Food").add("Visas > Fees")


def _schema(m, edit):
    schema = copy.deepcopy(m["solution"]["q2"]["my_schema"])
    edit(schema)
    return {"my_schema": schema}


def _args(schema):
    return schema["properties"]["call"]["properties"]["arguments"]


def _review_with(m, decide):
    """A fresh review of the solution's data, decided by ``decide(review, ids)``."""
    from smolsynth.review import Review

    data = m["solution"]["q3"]["my_data"]
    review = Review(data.rows())
    decide(review, [r["id"] for r in data.rows()])
    return review


def _one_run(m, tmp="one-run"):
    from smolsynth.runs import RunDataset

    data = RunDataset(m["folder"] / tmp)
    if not data.run_ids():
        data.append(m["solution"]["q3"]["my_data"].rows("guided"), tag="guided")
    return data


CASES: dict[str, dict[str, Any]] = {
    "06_topics_review.q1": {
        "exercise": nb06.q1,
        "correct": _q1,
        "incorrect": {
            "too few leaves": (lambda m: _q1(m, my_tree=__import__("smolsynth.topics", fromlist=["TopicTree"])
                                             .TopicTree("Travel").add("Rain").add("Money")),
                               "make it at least 4"),
            "nothing edited": (lambda m: _q1(m, my_tree=_untouched_tree(m)), "edit it by hand"),
            "a sibling twice": (lambda m: _q1(m, my_tree=_twice(m)), "twice: remove one"),
            "a leaf named like its parent": (lambda m: _q1(m, my_tree=_looping(m)), "names a topic twice"),
            "not a tree": (lambda m: _q1(m, my_tree=m["tree"].to_dict()), "it should be a TopicTree"),
        },
        "not_attempted": [lambda m: m["starter"]["q1"], lambda m: {"my_tree": ____}],
    },
    "06_topics_review.q2": {
        "exercise": nb06.q2,
        "correct": _q2,
        "incorrect": {
            "the weather schema": (lambda m: {"my_schema": __import__("smolsynth.records", fromlist=["x"])
                                              .TOOL_CALL_SCHEMA}, "(a reminder at 18:30)"),
            "time not required": (lambda m: _schema(m, lambda s: _args(s).update(required=["text"])),
                                  "(the time is missing)"),
            "any time string": (lambda m: _schema(m, lambda s: _args(s)["properties"]["time"].pop("pattern")),
                                "(the time is 25:99)"),
            "extra arguments allowed": (lambda m: _schema(m, lambda s: _args(s).pop("additionalProperties")),
                                        "(an extra argument)"),
            "any name": (lambda m: _schema(m, lambda s: s["properties"]["call"]["properties"].update(
                name={"type": "string"})), "(another function's name)"),
            "empty text allowed": (lambda m: _schema(m, lambda s: _args(s)["properties"]["text"].pop("minLength")),
                                   "(the reminder's text is empty)"),
            "not a schema": (lambda m: {"my_schema": {"type": "object", "required": "request"}},
                             "not a valid JSON Schema"),
        },
        "not_attempted": [lambda m: m["starter"]["q2"], lambda m: {"my_schema": ____}],
    },
    "06_topics_review.q3": {
        "exercise": nb06.q3,
        "correct": _q3,
        "incorrect": {
            "guidance too short": (lambda m: _q3(m, my_guidance="Short."), "at least three words"),
            "one run": (lambda m: _q3(m, my_data=_one_run(m)), "holds 1 run(s)"),
            "guidance not in the rows": (lambda m: _q3(m, my_guidance="Write like a pirate, please."),
                                         "No saved row carries `my_guidance`"),
            "nothing decided": (lambda m: _q3(m, my_review=_review_with(m, lambda r, ids: None)),
                                "decide on at least 3"),
            "examples not rated": (lambda m: _q3(m, my_review=_review_with(
                m, lambda r, ids: (r.accept(ids[:4]), r.rate(ids[0], 2))),
                my_examples=[dict(m["solution"]["q3"]["my_data"].rows()[0])]), "not accepted and rated 4"),
            "no examples": (lambda m: _q3(m, my_examples=[]), "not empty"),
            "not a dataset": (lambda m: _q3(m, my_data=m["solution"]["q3"]["my_data"].rows()),
                              "it should be a RunDataset"),
        },
        "not_attempted": [lambda m: m["starter"]["q3"], lambda m: {**_q3(m), "my_review": ____}],
    },
}

(test_every_exercise_has_test_cases, test_correct_answer_passes, test_incorrect_answer_is_explained_without_the_answer,
 test_not_attempted_answer) = exercise_tests(NOTEBOOK, CASES, fixture="made")


def test_docstring_examples_run() -> None:
    import doctest

    result = doctest.testmod(nb06)
    assert result.failed == 0 and result.attempted > 0
