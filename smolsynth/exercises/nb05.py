"""Exercises of notebook 05, "Text-classification data".

``q1`` 🐢 the learner writes the label-conflict finder (the same text under two labels), run on hidden cases;
``q2`` 🐕 writes their own label descriptions and categories, generates with them and re-labels; ``q3`` 🦁 makes data
for their own task, trains a classifier and tests it on texts they wrote themselves. The checks judge behaviour and
structure (which pairs conflict, labels from the set, rows accounted for, an accuracy that is recomputed), never the
wording, so they hold for the tiny offline model in CI and for a real model.

    >>> from smolsynth.exercises import ____, nb05
    >>> nb05.q1.evaluate(my_find_conflicts=____).status
    'not_attempted'
    >>> nb05.q1.evaluate(my_find_conflicts=lambda rows: []).message.startswith("Case 2")
    True
"""

from __future__ import annotations

import math
from typing import Any

from smolsynth.exercises.core import Case, Exercise, Level, expect, rows_of, run_cases

NOTEBOOK = "05_classification"

# each case: the rows, and the conflicting index pairs
_CONFLICT_CASES = tuple(Case(description, (rows,), expected) for description, rows, expected in (
    ("no rows", [], set()),
    ("one text under two labels",
     [{"text": "Where is my parcel?", "label": "delivery"}, {"text": "Where is my parcel?", "label": "billing"}],
     {(0, 1)}),
    ("the same text twice under the same label (a duplicate, not a conflict)",
     [{"text": "I was charged twice.", "label": "billing"}, {"text": "I was charged twice.", "label": "billing"}],
     set()),
    ("texts that differ only in case, punctuation and spaces",
     [{"text": "My order never arrived!", "label": "delivery"},
      {"text": "my  order never arrived", "label": "product_issue"},
      {"text": "The lid is cracked.", "label": "product_issue"}],
     {(0, 1)}),
    ("three copies under two labels",
     [{"text": "Refund please", "label": "billing"}, {"text": "refund please.", "label": "billing"},
      {"text": "Refund, please", "label": "account"}],
     {(0, 2), (1, 2)}),
    ("different texts under different labels",
     [{"text": "I forgot my password", "label": "account"}, {"text": "The blender is broken", "label": "product_issue"}],
     set()),
))


def _pairs(found: Any) -> set[tuple[int, int]]:
    expect(isinstance(found, (list, tuple, set)),
           f"it returned a {type(found).__name__}; return a list of index pairs, e.g. [(0, 2)]")
    pairs = set()
    for pair in found:
        expect(isinstance(pair, (list, tuple)) and len(pair) == 2 and all(isinstance(i, int) for i in pair),
               f"it returned {pair!r} in its list; each item should be a pair of row indices (i, j)")
        pairs.add((min(pair), max(pair)))
    return pairs


class FindConflicts(Exercise):
    notebook = NOTEBOOK
    name = "q1"
    title = "Find label conflicts yourself"
    level = Level.DEFAULT
    variables = ("my_find_conflicts",)
    hints = (
        "Compare the texts in the form duplicates are compared in: `normalize_text(text)` lower-cases, removes "
        "punctuation and collapses spaces.",
        "A conflict is a pair of rows i < j with the same normalized text and *different* labels; the same text "
        "under the same label is a duplicate, not a conflict.",
        "Two loops over the row indices (`for j in range(len(rows)): for i in range(j): ...`) are fast enough for "
        "a few thousand rows; return the list of `(i, j)`.",
    )

    def _check(self, my_find_conflicts: Any) -> str:
        n = run_cases(my_find_conflicts, "my_find_conflicts", _CONFLICT_CASES,
                      read=lambda got, case: _pairs(got), show=lambda pairs: repr(sorted(pairs)))
        return (f"Your function found the conflicts in all {n} hidden cases. In section 6, "
                "`label_conflicts` does the same with near-duplicates too (word 3-gram similarity).")


def _labels_of(value: Any, name: str) -> dict[str, str]:
    from smolsynth.classification import check_labels

    try:
        return check_labels(value, argument=name)
    except ValueError as err:
        expect(False, str(err))
    raise AssertionError  # unreachable


def _generated(result: Any, name: str) -> list[dict]:
    from smolsynth.rows import Result

    expect(isinstance(result, Result) and "labels" in result.params and "task" in result.params,
           f"`{name}` should be what `generate_texts(...)` returns (with its `.report`), not a bare list or dataset.")
    expect(result.report.rows_in == len(result.rows) + len(result.dropped_rows),
           f"`{name}` does not add up (rows in != kept + dropped): make it with `generate_texts(...)` and leave it "
           "as it is.")
    expect(len(result.rows) > 0, f"`{name}` kept no rows: look at `{name}.report` to see why they were dropped, "
                                 "and generate more rows (`n=`).")
    return rows_of(result)


class OwnDescriptions(Exercise):
    notebook = NOTEBOOK
    name = "q2"
    title = "Your own label descriptions and categories"
    level = Level.VARIANT
    variables = ("my_labels", "my_categories", "my_texts", "my_relabelled", "my_agreement")
    hints = (
        "`my_labels` is a dict label -> one-line description, like `SUPPORT_LABELS` but written by you (at least three "
        "labels); `my_categories` a dict category -> list of types, like `SUPPORT_CATEGORIES`.",
        "`my_texts = generate_texts(my_labels, n, categories=my_categories, ...)`, then "
        "`my_relabelled = relabel(my_texts, my_labels)`.",
        "`my_agreement = agreement(my_relabelled).rate`.",
    )

    def _check(self, my_labels: Any, my_categories: Any, my_texts: Any, my_relabelled: Any,
               my_agreement: Any) -> str:
        from smolsynth.classification import SUPPORT_CATEGORIES, SUPPORT_LABELS, UNCLEAR, agreement

        labels = _labels_of(my_labels, "my_labels")
        expect(len(labels) >= 3, f"`my_labels` has {len(labels)} labels; write at least three.")
        same = [k for k, v in labels.items() if SUPPORT_LABELS.get(k) == v]
        expect(not same, f"The descriptions of {same} are the course's own: write your own description for every "
                         "label.")
        expect(isinstance(my_categories, dict) and len(my_categories) >= 2
               and all(isinstance(v, (list, tuple)) and v for v in my_categories.values()),
               "`my_categories` should be a dict of at least two categories, each with a list of types.")
        expect(my_categories != SUPPORT_CATEGORIES, "`my_categories` is the course's `SUPPORT_CATEGORIES`: write your "
                                                    "own categories and types.")
        rows = _generated(my_texts, "my_texts")
        expect(my_texts.params["labels"] == labels, "`my_texts` was not generated with `my_labels`: pass them to "
                                                    "`generate_texts`.")
        for row in rows:
            expect(row["label"] in labels, f"A row of `my_texts` has the label {row['label']!r}, not one of "
                                           "`my_labels`.")
            expect(row.get("category") in my_categories and row.get("type") in list(my_categories[row["category"]]),
                   "The rows of `my_texts` are not about your categories: pass `categories=my_categories`.")
        relabelled = rows_of(my_relabelled)
        expect(relabelled and all("predicted_label" in r for r in relabelled),
               "`my_relabelled` has no `predicted_label`: make it with `relabel(my_texts, my_labels)`.")
        texts = {r["text"] for r in rows}
        expect(all(r["text"] in texts for r in relabelled), "`my_relabelled` holds texts that are not in `my_texts`: "
                                                            "re-label `my_texts` itself.")
        outside = sorted({r["predicted_label"] for r in relabelled} - set(labels) - {UNCLEAR})
        expect(not outside, f"`my_relabelled` predicts {outside}, which are not in `my_labels`: pass `my_labels` to "
                            "`relabel`, so its answers are constrained to them.")
        rate = agreement(relabelled).rate
        expect(isinstance(my_agreement, (int, float)) and math.isclose(float(my_agreement), rate, abs_tol=1e-9),
               f"`my_agreement` is {my_agreement!r}; it should be the share of rows of `my_relabelled` whose "
               "predicted label is their assigned one.")
        return (f"{len(rows)} texts for your {len(labels)} labels; the re-labelling pass agreed on {rate:.0%}. "
                "Where it disagrees, read the text: is the description unclear, or the text?")


class OwnTask(Exercise):
    notebook = NOTEBOOK
    name = "q3"
    title = "Your own task: train a classifier and test it on texts you wrote"
    level = Level.OWN
    variables = ("my_task", "my_own_labels", "my_train", "my_classifier", "my_test", "my_real_accuracy")
    hints = (
        "`my_task` says who writes to whom (e.g. \"A diner writes a review of a restaurant\"); `my_own_labels` are "
        "your labels with descriptions; `my_train = generate_texts(my_own_labels, n, task=my_task, "
        "categories=...)`.",
        "`my_classifier = train_classifier(my_train, labels=list(my_own_labels), output_dir=...)`.",
        "`my_test` is a list of at least 8 dicts {'text': ..., 'label': ...} that *you* write (not generated), "
        "covering at least two labels; `my_real_accuracy = evaluate_classifier(my_classifier, my_test).accuracy`.",
    )

    def _check(self, my_task: Any, my_own_labels: Any, my_train: Any, my_classifier: Any, my_test: Any,
               my_real_accuracy: Any) -> str:
        from smolsynth.classification import SUPPORT_LABELS, SUPPORT_TASK, Classifier, evaluate_classifier
        from smolsynth.stats import normalize_text

        expect(isinstance(my_task, str) and my_task.strip() and my_task.strip() != SUPPORT_TASK,
               "`my_task` should describe your own task (who writes to whom), not the course's.")
        labels = _labels_of(my_own_labels, "my_own_labels")
        expect(set(labels) != set(SUPPORT_LABELS), "`my_own_labels` has the course's labels: this exercise is about "
                                                   "your own task and its own labels.")
        rows = _generated(my_train, "my_train")
        expect(my_train.params["task"] == my_task.strip() or my_train.params["task"] == my_task,
               "`my_train` was not generated for `my_task`: pass `task=my_task` to `generate_texts`.")
        expect(my_train.params["labels"] == labels, "`my_train` was not generated with `my_own_labels`.")
        expect(isinstance(my_classifier, Classifier), "`my_classifier` should be what `train_classifier(...)` "
                                                      f"returns; it is a {type(my_classifier).__name__}.")
        expect(set(my_classifier.labels) == set(labels), f"`my_classifier` predicts {sorted(my_classifier.labels)}, "
                                                         "not your labels: pass `labels=list(my_own_labels)`.")
        expect(isinstance(my_test, list) and len(my_test) >= 8
               and all(isinstance(r, dict) and isinstance(r.get("text"), str) and r["text"].strip()
                       and isinstance(r.get("label"), str) for r in my_test),
               "`my_test` should be a list of at least 8 dicts with a 'text' and a 'label', written by you.")
        outside = sorted({r["label"] for r in my_test} - set(labels))
        expect(not outside, f"`my_test` has labels {outside} that are not in `my_own_labels`.")
        expect(len({r["label"] for r in my_test}) >= 2, "`my_test` uses one label only: a test needs at least two.")
        generated = {normalize_text(r["text"]) for r in rows + rows_of(my_train.dropped_rows) if r.get("text")}
        copied = [r["text"] for r in my_test if normalize_text(r["text"]) in generated]
        expect(not copied, f"{len(copied)} text(s) of `my_test` come from `my_train`: the test is texts you write "
                           "yourself, which the model never generated.")
        accuracy = evaluate_classifier(my_classifier, my_test).accuracy
        expect(isinstance(my_real_accuracy, (int, float))
               and math.isclose(float(my_real_accuracy), accuracy, abs_tol=1e-9),
               f"`my_real_accuracy` is {my_real_accuracy!r}, but `my_classifier` gets a different accuracy on "
               "`my_test`: compute it with `evaluate_classifier(my_classifier, my_test).accuracy`.")
        return (f"Trained on {len(rows)} generated texts, {accuracy:.0%} right on your {len(my_test)} own texts. "
                "Compare it with the accuracy on a synthetic test split: the gap is what your generator costs you.")


q1 = FindConflicts()
q2 = OwnDescriptions()
q3 = OwnTask()
EXERCISES = (q1, q2, q3)
