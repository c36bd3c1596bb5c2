"""Every exercise of notebook 05 with a correct, several incorrect and a not-attempted answer, on real results of the
tiny model (real generation through distilabel, the constrained re-labelling pass, a real Trainer run on the tiny
encoder). Incorrect feedback never contains the answer."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from exercise_harness import exercise_tests, private_home

from smolsynth.classification import SUPPORT_CATEGORIES, SUPPORT_LABELS, SUPPORT_TASK
from smolsynth.exercises import ____, nb05
from smolsynth.stats import normalize_text

MY_LABELS = {"billing": "money: charges and refunds", "delivery": "the parcel: late or lost",
             "account": "logging in and passwords"}
MY_CATEGORIES = {"garden": ["hose", "seeds"], "kitchen": ["kettle"]}
MY_TASK = "A diner writes a review of a restaurant"
MY_OWN = {"food": "the dishes and their taste", "service": "the staff and waiting times"}
MY_TEST = [{"text": t, "label": lab} for t, lab in [
    ("The soup was cold.", "food"), ("Lovely dessert!", "food"), ("tasteless fish", "food"),
    ("Great pizza crust", "food"), ("We waited an hour.", "service"), ("The waiter was rude", "service"),
    ("friendly staff", "service"), ("Nobody took our order", "service")]]


def _solution(rows):
    normal = [normalize_text(r["text"]) for r in rows]
    return [(i, j) for j in range(len(rows)) for i in range(j)
            if normal[i] == normal[j] and rows[i]["label"] != rows[j]["label"]]


@pytest.fixture(scope="module")
def made(tmp_path_factory, tiny_path) -> dict[str, Any]:
    """What a learner's cells would hold, made once on the tiny model in a private smolsynth home."""
    from smolsynth import classification as c

    with private_home(tmp_path_factory, tiny_path, "nb05") as home:
        common = dict(max_new_tokens=160, progress=False, allow_truncated=True)  # tiny: texts never end
        texts = c.generate_texts(MY_LABELS, 8, categories=MY_CATEGORIES, **common)
        course_texts = c.generate_texts(n=8, **common)
        relabelled = c.relabel(texts, MY_LABELS, progress=False)
        train = c.generate_texts(MY_OWN, 8, task=MY_TASK, categories={"restaurant": ["bistro"]}, **common)
        classifier = c.train_classifier(train, labels=list(MY_OWN), output_dir=home / "clf", epochs=1)
        course_classifier = c.train_classifier(c.real_messages()[:16], labels=list(c.SUPPORT_LABELS),
                                               output_dir=home / "clf2", epochs=1)
        accuracy = c.evaluate_classifier(classifier, MY_TEST).accuracy
    assert texts.rows and train.rows, (texts.report, train.report)
    return {"texts": texts, "course_texts": course_texts, "relabelled": relabelled,
            "rate": c.agreement(relabelled).rate, "train": train, "classifier": classifier,
            "course_classifier": course_classifier, "accuracy": accuracy}


def _q1(m, **kw):
    return {"my_find_conflicts": _solution, **kw}


def _q2(m, **kw):
    return {"my_labels": MY_LABELS, "my_categories": MY_CATEGORIES, "my_texts": m["texts"],
            "my_relabelled": m["relabelled"], "my_agreement": m["rate"], **kw}


def _q3(m, **kw):
    return {"my_task": MY_TASK, "my_own_labels": MY_OWN, "my_train": m["train"], "my_classifier": m["classifier"],
            "my_test": MY_TEST, "my_real_accuracy": m["accuracy"], **kw}


def _wrong_label(result):
    rows = [{**r, "predicted_label": "refunds"} if i == 0 else r for i, r in enumerate(result.rows)]
    return dataclasses.replace(result, rows=rows)


CASES: dict[str, dict[str, Any]] = {
    "05_classification.q1": {
        "exercise": nb05.q1,
        "correct": _q1,
        "incorrect": {
            "finds nothing": (lambda m: _q1(m, my_find_conflicts=lambda rows: []), "Case 2"),
            "duplicates as conflicts": (lambda m: _q1(m, my_find_conflicts=lambda rows: [
                (i, j) for j in range(len(rows)) for i in range(j)
                if normalize_text(rows[i]["text"]) == normalize_text(rows[j]["text"])]), "Case 3"),
            "exact text only": (lambda m: _q1(m, my_find_conflicts=lambda rows: [
                (i, j) for j in range(len(rows)) for i in range(j)
                if rows[i]["text"] == rows[j]["text"] and rows[i]["label"] != rows[j]["label"]]), "Case 4"),
            "returns a count": (lambda m: _q1(m, my_find_conflicts=lambda rows: len(_solution(rows))),
                                "list of index pairs"),
            "not a function": (lambda m: _q1(m, my_find_conflicts=[(0, 1)]), "should be a function"),
        },
        "not_attempted": [lambda m: {"my_find_conflicts": ____}],
    },
    "05_classification.q2": {
        "exercise": nb05.q2,
        "correct": _q2,
        "incorrect": {
            "course descriptions": (lambda m: _q2(m, my_labels={**MY_LABELS, "billing": SUPPORT_LABELS["billing"]}), "course's own"),
            "two labels": (lambda m: _q2(m, my_labels=dict(list(MY_LABELS.items())[:2])), "at least three"),
            "course categories": (lambda m: _q2(m, my_categories=SUPPORT_CATEGORIES), "course's `SUPPORT_CATEGORIES`"),
            "texts of the course's labels": (lambda m: _q2(m, my_texts=m["course_texts"]), "not generated with"),
            "a bare list": (lambda m: _q2(m, my_texts=m["texts"].rows), "not a bare list"),
            "not relabelled": (lambda m: _q2(m, my_relabelled=m["texts"]), "no `predicted_label`"),
            "a label outside the set": (lambda m: _q2(m, my_relabelled=_wrong_label(m["relabelled"])),
                                        "not in `my_labels`"),
            "wrong rate": (lambda m: _q2(m, my_agreement=m["rate"] + 0.5), "share of rows"),
        },
        "not_attempted": [lambda m: {k: ____ for k in nb05.q2.variables}, lambda m: _q2(m, my_agreement=____)],
    },
    "05_classification.q3": {
        "exercise": nb05.q3,
        "correct": _q3,
        "incorrect": {
            "the course's task": (lambda m: _q3(m, my_task=SUPPORT_TASK), "your own task"),
            "other task than generated": (lambda m: _q3(m, my_task="A pupil writes to a teacher"),
                                          "not generated for `my_task`"),
            "the course's classifier": (lambda m: _q3(m, my_classifier=m["course_classifier"]), "not your labels"),
            "too few test texts": (lambda m: _q3(m, my_test=MY_TEST[:5]), "at least 8"),
            "one label only": (lambda m: _q3(m, my_test=[dict(r, label="food") for r in MY_TEST]),
                               "one label only"),
            "test copied from training": (lambda m: _q3(m, my_test=MY_TEST[1:] + [
                {"text": m["train"].rows[0]["text"], "label": m["train"].rows[0]["label"]}]),
                "come from `my_train`"),
            "made-up accuracy": (lambda m: _q3(m, my_real_accuracy=m["accuracy"] + 0.25), "different accuracy"),
        },
        "not_attempted": [lambda m: {k: ____ for k in nb05.q3.variables}, lambda m: _q3(m, my_real_accuracy=____)],
    },
}


(test_every_exercise_has_test_cases, test_correct_answer_passes,
 test_incorrect_answer_is_explained_without_the_answer, test_not_attempted_answer) = exercise_tests(
    "05_classification", CASES, fixture="made")
