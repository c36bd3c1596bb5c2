"""Exercises of notebook 06, "Topic trees, guidance, structured records and review".

``q1`` 🐢 the learner fixes a topic tree by hand (no repeats, no leaf named like its parent, enough leaves);
``q2`` 🐕 writes the JSON Schema of another tool call (``set_reminder``), run on hidden valid and invalid records;
``q3`` 🦁 runs the loop on their own use case: two tagged runs (one with guidance), a review, and few-shot examples
taken only from accepted, highly rated rows. The checks recompute what they judge from the objects (the tree's
paths, the schema's verdicts, the saved runs and review state), so they hold for the tiny model and a real one.

    >>> from smolsynth.exercises import ____, nb06
    >>> nb06.q1.evaluate(my_tree=____).status
    'not_attempted'
    >>> from smolsynth.topics import TopicTree
    >>> print(nb06.q1.evaluate(my_tree=TopicTree("Weather").add("Weather > Rain")).message)
    `my_tree` has 1 leaf; make it at least 4, so that per-leaf samples cover the subject.
"""

from __future__ import annotations

from typing import Any

from smolsynth.exercises.core import Case, Exercise, Incorrect, Level, expect, run_cases

NOTEBOOK = "06_topics_review"
MIN_LEAVES = 4
MIN_REVIEWED = 3


class FixTheTree(Exercise):
    notebook = NOTEBOOK
    name = "q1"
    title = "Fix the model's topic tree"
    level = Level.DEFAULT
    variables = ("my_tree",)
    hints = (
        "Start from the model's tree: `my_tree = TopicTree.from_dict(tree.to_dict())` copies it. Then "
        "`my_tree.remove('<path>')`, `my_tree.rename('<path>', 'Better name')`, `my_tree.add('<path>')`.",
        "`print(my_tree)` shows it; `my_tree.leaves()` lists the paths. A leaf should name something narrower than "
        "its parent, and two siblings should not be the same topic.",
    )

    def _check(self, my_tree: Any) -> str:
        from smolsynth.stats import normalize_text
        from smolsynth.topics import SEPARATOR, TopicTree

        expect(isinstance(my_tree, TopicTree), f"`my_tree` is a {type(my_tree).__name__}; it should be a "
                                               "TopicTree (e.g. a copy of the model's `tree`, edited).")
        leaves = my_tree.leaves()
        expect(len(leaves) >= MIN_LEAVES, f"`my_tree` has {len(leaves)} lea{'f' if len(leaves) == 1 else 'ves'}; "
                                          f"make it at least {MIN_LEAVES}, so that per-leaf samples cover the "
                                          "subject.")
        for leaf in leaves:
            names = [normalize_text(n) for n in leaf.split(SEPARATOR)]
            expect(len(set(names)) == len(names), f"The path {leaf!r} names a topic twice: a subtopic should be "
                                                  "narrower than its parent. Rename or remove it.")

        def walk(node: Any, path: str) -> None:
            keys = [normalize_text(t.name) for t in node.subtopics]
            twice = sorted({k for k in keys if keys.count(k) > 1})
            if twice:
                raise Incorrect(f"{path!r} has the subtopic {twice[0]!r} twice: remove one.")
            for child in node.subtopics:
                walk(child, f"{path}{SEPARATOR}{child.name}")

        walk(my_tree.root, my_tree.root.name)
        edited = [t for t in _nodes(my_tree.root) if t.source == "human" and t is not my_tree.root]
        expect(edited, "Every topic of `my_tree` is the model's as it proposed it: edit it by hand (rename, add or "
                       "remove at least one topic) — that is the point of the exercise.")
        return (f"{len(leaves)} leaves, no topic repeated along a path or among siblings, {len(edited)} topic(s) "
                "yours. Generation per leaf now covers what you chose, not what the model clusters on.")


def _nodes(node: Any) -> list:
    return [node] + [n for child in node.subtopics for n in _nodes(child)]


def _reminder(text: str = "Call mum", time: str = "18:30", **extra: Any) -> dict:
    return {"request": "Remind me to call mum at half past six.",
            "call": {"name": "set_reminder", "arguments": {"text": text, "time": time, **extra}}}


_SCHEMA_CASES = tuple(Case(description, (record,), expected) for description, record, expected in (
    ("a reminder at 18:30", _reminder(), True),
    ("a reminder at 07:05", _reminder("Take the bins out", "07:05"), True),
    ("the time is missing", {"request": "Remind me.", "call": {"name": "set_reminder",
                                                               "arguments": {"text": "Call mum"}}}, False),
    ("the time is 25:99", _reminder(time="25:99"), False),
    ("the time is 'half six'", _reminder(time="half six"), False),
    ("another function's name", {**_reminder(), "call": {**_reminder()["call"], "name": "get_weather"}}, False),
    ("an extra argument", _reminder(priority="high"), False),
    ("the reminder's text is empty", _reminder(text=""), False),
    ("no request", {"call": _reminder()["call"]}, False),
))


class ReminderSchema(Exercise):
    notebook = NOTEBOOK
    name = "q2"
    title = "Write the schema of another tool call"
    level = Level.VARIANT
    variables = ("my_schema",)
    hints = (
        "Copy `TOOL_CALL_SCHEMA` (`copy.deepcopy`) and change the `call`: `name` is `{'const': 'set_reminder'}`, and "
        "`arguments` has `text` (a non-empty string: `minLength: 1`) and `time`, both required, nothing else "
        "(`additionalProperties: False`).",
        "A time of day as HH:MM is a pattern: `^([01][0-9]|2[0-3]):[0-5][0-9]$`.",
    )

    def _check(self, my_schema: Any) -> str:
        import jsonschema

        from smolsynth.records import check_schema

        try:
            check_schema(my_schema, argument="my_schema")
        except (TypeError, ValueError) as err:
            raise Incorrect(str(err)) from None
        validator = jsonschema.Draft202012Validator(my_schema)

        n = run_cases(validator.is_valid, "my_schema.is_valid", _SCHEMA_CASES,
                      show=lambda ok: f"{ok} ({'accepts' if ok else 'rejects'} the record)" if isinstance(ok, bool)
                      else repr(ok))
        return (f"Your schema accepts the valid reminders and rejects the invalid ones in all {n} hidden cases. "
                "Generate with it: `generate_records(rows, my_schema)`.")


class OwnLoop(Exercise):
    notebook = NOTEBOOK
    name = "q3"
    title = "The loop on your own use case: guidance, tagged runs, review, few-shot"
    level = Level.OWN
    variables = ("my_guidance", "my_data", "my_review", "my_examples")
    hints = (
        "`my_data = RunDataset(data_path('topics') / 'mine')`; generate twice from `leaf_prompts(<your tree>, "
        "<your task>)`, the second time with `guidance=my_guidance`, and `my_data.append(<each result>)`.",
        "`my_review = Review(my_data.rows(), path=my_data.folder / 'review.json')`; accept, reject and rate at "
        f"least {MIN_REVIEWED} rows (in the panel, or with `my_review.accept(...)`, `my_review.rate(...)`).",
        "`my_examples = my_review.few_shot(3)` returns only accepted rows rated 4 or 5.",
    )

    def _check(self, my_guidance: Any, my_data: Any, my_review: Any, my_examples: Any) -> str:
        from smolsynth.review import Review
        from smolsynth.runs import RunDataset

        expect(isinstance(my_guidance, str) and len(my_guidance.split()) >= 3,
               f"`my_guidance` is {my_guidance!r:.60}; write a short note of at least three words that tells the "
               "model what to change (\"Write as a tourist, not a local.\").")
        expect(isinstance(my_data, RunDataset), f"`my_data` is a {type(my_data).__name__}; it should be a "
                                                "RunDataset your runs were appended to.")
        fresh = RunDataset(my_data.folder)  # what is on disk, not what the object remembers
        runs = fresh.run_ids()
        expect(len(runs) >= 2, f"`my_data` holds {len(runs)} run(s); append at least two: one without guidance, "
                               "one with `my_guidance`.")
        rows = fresh.rows()
        guided = {r["run_id"] for r in rows if r.get("guidance") == my_guidance}
        plain = {r["run_id"] for r in rows if not r.get("guidance")}
        expect(guided, "No saved row carries `my_guidance` in its `guidance` column: generate the second run "
                       "from `leaf_prompts(..., guidance=my_guidance)` and append it.")
        expect(plain - guided, "Every run has the guidance: keep one run without it, to compare against.")
        expect(isinstance(my_review, Review), f"`my_review` is a {type(my_review).__name__}; make it with "
                                              "`Review(my_data.rows(), path=...)`.")
        ids = {r["id"] for r in rows}
        foreign = [i for i in my_review.filter() if i not in ids]
        expect(not foreign, f"`my_review` reviews rows that are not in `my_data` (e.g. {foreign[:1]}): review "
                            "`my_data.rows()`.")
        counts = my_review.counts()
        decided = counts.get("accepted", 0) + counts.get("rejected", 0)
        expect(decided >= MIN_REVIEWED and counts.get("rated", 0) >= 1,
               f"`my_review` has {decided} row(s) accepted or rejected and {counts.get('rated', 0)} rated; decide on "
               f"at least {MIN_REVIEWED} and rate at least one.")
        expect(isinstance(my_examples, list) and my_examples, "`my_examples` should be the list "
                                                              "`my_review.few_shot(...)` returns, not empty: accept "
                                                              "and rate at least one row 4 or 5.")
        good = {i for i in my_review.filter(status="accepted", min_rating=4)}
        bad = [e.get("id") for e in my_examples if not isinstance(e, dict) or e.get("id") not in good]
        if bad:
            raise Incorrect(f"{len(bad)} row(s) of `my_examples` are not accepted and rated 4 or more in "
                            f"`my_review` (e.g. {bad[0]!r}): only highly rated rows may feed the next step.")
        return (f"{len(runs)} tagged runs, {decided} rows reviewed, {len(my_examples)} few-shot example(s) from the "
                "best ones. Generate the next run with them (`leaf_prompts(..., examples=...)`), and compare.")


q1 = FixTheTree()
q2 = ReminderSchema()
q3 = OwnLoop()
EXERCISES = (q1, q2, q3)
