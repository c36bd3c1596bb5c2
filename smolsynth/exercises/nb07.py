"""Exercises of notebook 07, "Look at your data".

``q1`` 🐢 the learner writes exact deduplication (indices to keep), run on hidden cases; ``q2`` 🐕 chooses a MinHash
threshold by measuring recall on the planted duplicates; ``q3`` 🦁 curates data of their own use case to a budget,
with a funnel that accounts for every row. The checks recompute what they judge (the kinds dropped, the accounting,
the budget, the contamination of the selected rows), never the wording, so they hold for the tiny model and a real one.

    >>> from smolsynth.exercises import ____, nb07
    >>> nb07.q1.evaluate(my_dedup=____).status
    'not_attempted'
    >>> nb07.q1.evaluate(my_dedup=lambda texts: list(range(len(texts)))).message.startswith("Case 3")
    True
    >>> from smolsynth.dedup import minhash_duplicates, planted_duplicates
    >>> print(nb07.q2.evaluate(my_threshold=0.9, my_minhash=minhash_duplicates(planted_duplicates(), threshold=0.9)
    ...                        ).message)  # doctest: +ELLIPSIS
    At 0.9 MinHash finds 10% of the reworded copies (1 of 10); find at least 80%: ...
"""

from __future__ import annotations

from typing import Any

from smolsynth.exercises.core import Case, Exercise, Incorrect, Level, expect, rows_of, run_cases

NOTEBOOK = "07_curation"
MIN_REWORDED_RECALL = 0.8
MIN_OWN_ROWS = 12

_DEDUP_CASES = tuple(Case(description, (texts,), expected) for description, texts, expected in (
    ("no texts", [], []),
    ("no duplicates", ["Explain rain.", "Name three fruits."], [0, 1]),
    ("the same text twice", ["Write a poem.", "Write a poem."], [0]),
    ("case, punctuation and spaces differ", ["Write a poem!", "write  a poem", "Explain rain."], [0, 2]),
    ("three copies, apart", ["Hi there", "Explain rain.", "hi, there", "HI THERE!"], [0, 1]),
    ("similar but different", ["Write a poem about the sea.", "Write a poem about the city."], [0, 1]),
))


def _indices(got: Any, case: Case) -> list[int]:
    expect(isinstance(got, (list, tuple)) and all(isinstance(i, int) and not isinstance(i, bool) for i in got),
           f"it returned {type(got).__name__} {got!r:.60}; return a list of the indices to keep, e.g. [0, 2]")
    return list(got)


class ExactDedup(Exercise):
    notebook = NOTEBOOK
    name = "q1"
    title = "Exact deduplication, by hand"
    level = Level.DEFAULT
    variables = ("my_dedup",)
    hints = (
        "Compare texts in their normalized form: `normalize_text(text)` lower-cases, removes punctuation and "
        "collapses spaces.",
        "Walk the texts in order with `enumerate`, keep a set of the normalized texts seen so far, and keep an index "
        "only the first time its normalized text appears.",
    )

    def _check(self, my_dedup: Any) -> str:
        n = run_cases(my_dedup, "my_dedup", _DEDUP_CASES, read=_indices)
        return (f"Your function kept the right rows in all {n} hidden cases. `exact_duplicates` does the same with a "
                "hash of the normalized text, and links each dropped row to the row it copies (`duplicate_of`).")


class MinHashThreshold(Exercise):
    notebook = NOTEBOOK
    name = "q2"
    title = "Choose a MinHash threshold by measuring it"
    level = Level.VARIANT
    variables = ("my_threshold", "my_minhash")
    hints = (
        "`my_minhash = minhash_duplicates(planted, threshold=my_threshold, seed=SEED)`; then count the kinds of its "
        "dropped rows: `pd.Series([r['kind'] for r in my_minhash.dropped_rows]).value_counts()`.",
        "A reworded copy shares only part of its word 3-grams with its original: at 0.9, only copies with nearly "
        "every 3-gram in common are found. Lower the threshold step by step, and watch the `original` count.",
    )

    def _check(self, my_threshold: Any, my_minhash: Any) -> str:
        from smolsynth.dedup import planted_duplicates
        from smolsynth.rows import Result

        expect(isinstance(my_threshold, (int, float)) and not isinstance(my_threshold, bool)
               and 0 < my_threshold <= 1,
               f"`my_threshold` is {my_threshold!r}; it should be a number in (0, 1]: the estimated Jaccard similarity "
               "at or above which two rows count as duplicates.")
        expect(isinstance(my_minhash, Result), f"`my_minhash` is a {type(my_minhash).__name__}; it should be the "
                                               "result of `minhash_duplicates(planted, threshold=my_threshold, ...)`.")
        step = my_minhash.report.step
        expect(step.startswith("minhash"), f"`my_minhash` is the result of the step {step!r}, not of "
                                           "`minhash_duplicates`: this exercise measures MinHash alone.")
        planted = planted_duplicates()
        expect(my_minhash.report.rows_in == len(planted)
               and len(my_minhash.rows) + len(my_minhash.dropped_rows) == len(planted)
               and all("kind" in r for r in my_minhash.rows + my_minhash.dropped_rows),
               f"`my_minhash` ran over {my_minhash.report.rows_in} rows, not over the {len(planted)} planted rows: "
               "pass `planted` itself (its rows carry the `kind` the check counts).")
        used = my_minhash.params.get("threshold")
        expect(used == my_threshold, f"`my_minhash` was made with threshold {used!r}, but `my_threshold` is "
                                     f"{my_threshold!r}: pass threshold=my_threshold, so the result measures it.")
        dropped = [r["kind"] for r in my_minhash.dropped_rows]
        reworded = sum(r["kind"] == "reworded" for r in planted)
        found = dropped.count("reworded")
        recall = found / reworded
        originals = dropped.count("original")
        expect(originals == 0, f"At {my_threshold} MinHash drops {originals} original row(s) as duplicates of other "
                               "originals (look at the dropped rows whose `kind` is `original`): the threshold is too "
                               "low, and two different requests that share a few phrases count as copies.")
        expect(recall >= MIN_REWORDED_RECALL,
               f"At {my_threshold} MinHash finds {recall:.0%} of the reworded copies ({found} of {reworded}); find "
               f"at least {MIN_REWORDED_RECALL:.0%}: the threshold is too high. A reworded copy shares only part of "
               "its word 3-grams with its original.")
        return (f"At {my_threshold}, MinHash finds {recall:.0%} of the reworded copies and drops no original. "
                "Paraphrases share few 3-grams: that is the embeddings' job.")


class OwnCuration(Exercise):
    notebook = NOTEBOOK
    name = "q3"
    title = "Curate your own data to a budget"
    level = Level.OWN
    variables = ("my_rows", "my_budget", "my_funnel", "my_selected")
    hints = (
        "`my_rows` is a list of at least 12 dicts with an `instruction` and a `generation` that you write (not the "
        "course's data); `my_budget` a whole number smaller than the number of rows.",
        "`my_funnel = Funnel('mine')`; after each step, `my_funnel.add('07', result)` (the first one with "
        "`source=True`): `deduplicate(my_rows)`, `decontaminate(...)`, `deita_scores(...)`, `deita_select(..., "
        "my_budget)`.",
        "`my_funnel.check()` lists what does not add up; an empty list means every row is accounted for.",
    )

    def _check(self, my_rows: Any, my_budget: Any, my_funnel: Any, my_selected: Any) -> str:
        from smolsynth.contamination import decontaminate
        from smolsynth.dedup import planted_duplicates
        from smolsynth.funnel import Funnel
        from smolsynth.rows import Result
        from smolsynth.stats import normalize_text

        # the learner's rows and budget
        expect(isinstance(my_rows, list), f"`my_rows` is a {type(my_rows).__name__}; it should be a list of dicts, "
                                          "each with an `instruction` and a `generation`.")
        expect(len(my_rows) >= MIN_OWN_ROWS, f"`my_rows` has {len(my_rows)} row(s); write at least {MIN_OWN_ROWS}, "
                                             "so that every step has something to drop and the budget something "
                                             "to choose from.")
        for i, row in enumerate(my_rows):
            expect(isinstance(row, dict) and all(isinstance(row.get(key), str) and row[key].strip()
                                                 for key in ("instruction", "generation")),
                   f"Row {i} of `my_rows` is {row!r:.80}; every row should be a dict with a non-empty `instruction` "
                   "(the request) and `generation` (its answer), both strings.")
        course = {normalize_text(r["instruction"]) for r in planted_duplicates()}
        copied = sum(normalize_text(r["instruction"]) in course for r in my_rows)
        expect(not copied, f"{copied} instruction(s) of `my_rows` come from the course's planted set: write the "
                           "requests of your own use case.")
        expect(isinstance(my_budget, int) and not isinstance(my_budget, bool) and 0 < my_budget < len(my_rows),
               f"`my_budget` is {my_budget!r}; it should be a whole number between 1 and {len(my_rows) - 1}: fewer "
               "rows than `my_rows` has, or there is nothing to select.")

        # the selection: recomputed facts only (its step, its size, where its rows come from)
        expect(isinstance(my_selected, Result), f"`my_selected` is a {type(my_selected).__name__}; it should be "
                                                "what `deita_select(<scored rows>, my_budget)` returns.")
        step = my_selected.report.step
        expect(step.startswith("deita select"), f"`my_selected` is the result of the step {step!r}, not of "
                                                "`deita_select`: score the rows, then select from them.")
        selected = rows_of(my_selected)
        budget = my_selected.params.get("budget")
        expect(budget in (None, my_budget), f"`my_selected` was selected with a budget of {budget!r}, but "
                                            f"`my_budget` is {my_budget}: pass my_budget to `deita_select`.")
        expect(len(selected) <= my_budget, f"`my_selected` holds {len(selected)} rows, more than `my_budget` "
                                           f"({my_budget}): pass my_budget to `deita_select`.")
        mine = {r["instruction"] for r in my_rows}
        foreign = [r.get("instruction") for r in selected if r.get("instruction") not in mine]
        if foreign:
            raise Incorrect(f"{len(foreign)} row(s) of `my_selected` are not in `my_rows` (e.g. {foreign[0]!r:.80}): "
                            "select from your own rows.")

        # the funnel: every row of `my_rows` accounted for, stage by stage, down to `my_selected`
        expect(isinstance(my_funnel, Funnel), f"`my_funnel` is a {type(my_funnel).__name__}; make it with "
                                              "`Funnel('mine')` and add every step with `my_funnel.add('07', ...)`.")
        steps = ", ".join(s.step for s in my_funnel.stages) or "none"
        expect(len(my_funnel.stages) >= 4, f"`my_funnel` has {len(my_funnel.stages)} stage(s) ({steps}): add the "
                                           "result of each of the four steps (deduplicate, decontaminate, score, "
                                           "select).")
        expect(my_funnel.rows_made == len(my_rows), f"`my_funnel` starts with {my_funnel.rows_made} rows, but "
                                                    f"`my_rows` has {len(my_rows)}: its first stage is the step "
                                                    "that took in `my_rows`, added with `source=True`.")
        problems = my_funnel.check(len(selected))
        expect(not problems, "`my_funnel` does not account for every row: " + "; ".join(problems[:3]) + ". Each "
                             "step should take in what the step before it kept, each result be added once, and the "
                             "last stage be the selection that made `my_selected`.")

        # decontamination, recomputed on what was selected
        contaminated = decontaminate(selected).dropped_rows
        if contaminated:
            first = contaminated[0]
            raise Incorrect(f"{len(contaminated)} selected row(s) overlap an evaluation prompt (e.g. "
                            f"{first['instruction']!r:.80} shares {first['overlap']!r} with "
                            f"{first['contaminated_by']!r}): decontaminate the instructions before you select, and "
                            "select from the rows it kept.")
        return (f"{len(my_rows)} rows in, {len(selected)} selected, {len(my_funnel.dropped_rows)} dropped, each with "
                "its step and reason. Read the dropped ones: would you have dropped them?")


q1 = ExactDedup()
q2 = MinHashThreshold()
q3 = OwnCuration()
EXERCISES = (q1, q2, q3)
