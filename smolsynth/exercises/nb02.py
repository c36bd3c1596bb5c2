"""Exercises of notebook 02, "Preference datasets".

``q1`` 🐢 judges candidates with UltraFeedback and turns them into pairs with the default rule; ``q2`` 🐕 adds
EvolQuality rewrites as candidates and compares the ratings they get with the pooled answers'; ``q3`` 🦁 runs the
position-bias check and picks the binarization rule for the learner's own data; ``q4`` 🐢 the learner writes the
best-vs-worst rule with ties and unparsed ratings, run on hidden cases. The checks judge structure and behaviour
(columns, counts, one rating per candidate, where each candidate came from, no pair with chosen == rejected), never
wording, so they hold for the tiny offline model in CI and for a real model on a learner's machine.

    >>> from smolsynth.exercises import ____, nb02
    >>> nb02.q1.evaluate(my_judged=____, my_pairs=____).status
    'not_attempted'
    >>> nb02.q3.evaluate(my_bias=None, my_rule="best", my_final_pairs=None).message
    "`my_rule` is 'best'; it should name one of the three rules: best-vs-random, best-vs-worst, best-vs-random-lower."
"""

from __future__ import annotations

import math
from typing import Any

from smolsynth.exercises.core import Case, Exercise, Level, dataset_of, dropped_count, expect, run_cases

NOTEBOOK = "02_preferences"


def _check_judged(dataset: Any, name: str) -> None:
    """Every row has one rating (1-5, or a list of aspect ratings) per candidate."""
    missing = {"instruction", "generations", "ratings"} - set(dataset.column_names)
    expect(not missing, f"`{name}` has no {' or '.join(sorted(missing))} column: make it with `judge(...)` on rows "
                        "that have candidates (`generations`).")
    expect(len(dataset) > 0, f"`{name}` has no rows: look at its `.report` to see why they were dropped.")
    for i, row in enumerate(dataset):
        ratings, generations = row["ratings"], row["generations"]
        expect(isinstance(ratings, list) and len(ratings) == len(generations),
               f"Row {i} of `{name}` has {len(ratings or [])} ratings for {len(generations)} candidates: a judged row "
               "needs exactly one rating per candidate (`judge` guarantees it).")
        flat = [r for rating in ratings for r in (rating if isinstance(rating, list) else [rating])]
        expect(all(isinstance(r, (int, float)) and 1 <= r <= 5 for r in flat),
               f"Row {i} of `{name}` has a rating that is missing or outside 1-5.")


def _check_pairs(pairs: Any, name: str) -> None:
    """prompt / chosen / rejected message lists, chosen rated above rejected, never the same text."""
    missing = {"prompt", "chosen", "rejected"} - set(pairs.column_names)
    expect(not missing, f"`{name}` has no {' or '.join(sorted(missing))} column: DPO needs prompt, chosen and "
                        "rejected. Make it with `binarize(...)`.")
    for i, row in enumerate(pairs):
        expect(isinstance(row["prompt"], list) and row["prompt"] and row["prompt"][-1].get("role") == "user",
               f"Row {i} of `{name}`: `prompt` should be a list of messages ending with the user's turn.")
        for col in ("chosen", "rejected"):
            expect(isinstance(row[col], list) and len(row[col]) == 1 and row[col][0].get("role") == "assistant",
                   f"Row {i} of `{name}`: `{col}` should be a list with one assistant message.")
        expect(row["chosen"][0]["content"].strip() != row["rejected"][0]["content"].strip(),
               f"Row {i} of `{name}` has the same text as chosen and rejected: DPO learns nothing from it.")
        if "chosen_rating" in pairs.column_names:
            expect(row["chosen_rating"] > row["rejected_rating"],
                   f"Row {i} of `{name}`: the chosen answer is not rated above the rejected one.")


def _rule_of(result: Any, name: str) -> str:
    step = getattr(getattr(result, "report", None), "step", "") or ""
    expect(step.startswith("binarize ("),
           f"`{name}` should be the result of `binarize(...)` (with its `.report`), not a bare dataset.")
    return step[len("binarize ("):-1]


class JudgeAndBinarize(Exercise):
    notebook = NOTEBOOK
    name = "q1"
    title = "Judge and binarize with the default rule"
    level = Level.DEFAULT
    variables = ("my_judged", "my_pairs")
    hints = (
        "`my_judged = judge(evolved.dataset, ...)`: the judge needs rows with an `instruction` and its candidate "
        "`generations`, which `evolved` (or `pooled`) has.",
        "`my_pairs = binarize(my_judged.dataset)`: leave out `rule=` to get the default rule.",
        "Every judged row must be accounted for: pairs plus dropped rows (`my_pairs.report`) make all of them.",
    )

    def _check(self, my_judged: Any, my_pairs: Any) -> str:
        from smolsynth.preferences import DEFAULT_RULE

        judged = dataset_of(my_judged, "my_judged", "judge(...)")
        _check_judged(judged, "my_judged")
        pairs = dataset_of(my_pairs, "my_pairs", "binarize(...)")
        _check_pairs(pairs, "my_pairs")
        rule = _rule_of(my_pairs, "my_pairs")
        expect(rule == DEFAULT_RULE, f"`my_pairs` was made with the rule {rule!r}; this exercise asks for the default "
                                     "rule: call `binarize` without `rule=`.")
        instructions = set(judged["instruction"])
        expect(all(p[-1]["content"] in instructions for p in pairs["prompt"]),
               "Some prompts of `my_pairs` are not instructions of `my_judged`: binarize `my_judged` itself.")
        dropped = dropped_count(my_pairs)
        expect(len(pairs) + dropped == len(judged),
               f"`my_pairs` accounts for {len(pairs) + dropped} rows (pairs plus dropped) but `my_judged` has "
               f"{len(judged)}: binarize all of `my_judged`, once.")
        return (f"{len(judged)} judged prompts became {len(pairs)} pairs"
                + (f" ({dropped} dropped, reasons in `my_pairs.report`)" if dropped else "")
                + ", each with a chosen answer rated strictly above its rejected one.")


class EvolvedCandidates(Exercise):
    notebook = NOTEBOOK
    name = "q2"
    title = "Add EvolQuality candidates and compare the ratings"
    level = Level.VARIANT
    variables = ("my_evolved", "my_evolved_judged", "my_mean_by_source")
    hints = (
        "`my_evolved = evolve_quality(pooled.dataset, [...])` with one or more of the five directions, e.g. "
        "`[\"creativity\", \"details\"]`; each adds one candidate per row, with `generation_sources` saying how it "
        "was made.",
        "Judge the evolved rows: `my_evolved_judged = judge(my_evolved.dataset, ...)`.",
        "`ratings_table(my_evolved_judged.dataset)` has one row per candidate with its `source` and `rating`: group "
        "by `source`, take the mean of `rating`, and turn it into a dict (`.to_dict()`).",
    )

    def _check(self, my_evolved: Any, my_evolved_judged: Any, my_mean_by_source: Any) -> str:
        from smolsynth.preferences import ratings_table

        evolved = dataset_of(my_evolved, "my_evolved", "evolve_quality(...)")
        expect("generation_sources" in evolved.column_names and len(evolved) > 0,
               "`my_evolved` has no `generation_sources` column: make it with `evolve_quality(...)` on the pooled "
               "rows.")
        with_evol = sum(any(str(s).startswith("evol:") for s in row) for row in evolved["generation_sources"])
        expect(with_evol > 0, "No row of `my_evolved` has an EvolQuality candidate (a `generation_sources` entry "
                              "starting with `evol:`): pass at least one rewrite direction to `evolve_quality`.")
        judged = dataset_of(my_evolved_judged, "my_evolved_judged", "judge(...)")
        _check_judged(judged, "my_evolved_judged")
        expect("generation_sources" in judged.column_names
               and set(judged["instruction"]) <= set(evolved["instruction"]),
               "`my_evolved_judged` is not a judgment of `my_evolved`: run `judge` on `my_evolved.dataset`.")
        expect(any(str(s).startswith("evol:") for row in judged["generation_sources"] for s in row),
               "`my_evolved_judged` has no EvolQuality candidate: judge the evolved rows, not the pooled ones.")
        if hasattr(my_mean_by_source, "to_dict"):
            my_mean_by_source = my_mean_by_source.to_dict()
        expect(isinstance(my_mean_by_source, dict),
               f"`my_mean_by_source` should be a dict from source to mean rating; it is a "
               f"{type(my_mean_by_source).__name__}.")
        table = ratings_table(judged)
        expected = table.groupby("source")["rating"].mean().to_dict()
        expect(set(my_mean_by_source) == set(expected),
               f"`my_mean_by_source` has the keys {sorted(map(str, my_mean_by_source))}; it should have one key per "
               f"source of a candidate in `my_evolved_judged` ({len(expected)} of them).")
        for source, mean in expected.items():
            value = my_mean_by_source[source]
            expect(isinstance(value, (int, float)) and math.isclose(float(value), mean, abs_tol=1e-6),
                   f"The mean rating for {source!r} in `my_mean_by_source` is not the mean of that source's ratings "
                   "in `my_evolved_judged`.")
        summary = ", ".join(f"{s} {m:.2f}" for s, m in sorted(expected.items()))
        return f"Mean rating by source: {summary}. Do the rewrites earn better ratings than the pooled answers?"


HIGH_FLIP_RATE = 0.3
"""Above this flip rate (from the order, or from sampling alone), exercise 3 asks for ``best-vs-worst`` (the
notebook's rule of thumb)."""


class PositionBiasAndRule(Exercise):
    notebook = NOTEBOOK
    name = "q3"
    title = "Check the judge for position bias, then choose your rule"
    level = Level.OWN
    variables = ("my_bias", "my_rule", "my_final_pairs")
    hints = (
        "`my_bias = position_bias(my_judged_rows, sample=...)` judges a sample in both orders (and twice more, "
        "sampled, in the same order); print it to read the two flip rates.",
        "`my_rule` is one of `RULES`. A judge that flips often is noisy: a rule that only pairs clearly different "
        "ratings (the best against the worst) is safer than a random pick.",
        "`my_final_pairs = binarize(<your judged rows>, rule=my_rule)`.",
    )

    def _check(self, my_bias: Any, my_rule: Any, my_final_pairs: Any) -> str:
        from smolsynth.preferences import RULES, PositionBias

        expect(isinstance(my_rule, str) and my_rule in RULES,
               f"`my_rule` is {my_rule!r}; it should name one of the three rules: {', '.join(RULES)}.")
        expect(isinstance(my_bias, PositionBias),
               f"`my_bias` should be what `position_bias(...)` returns; it is a {type(my_bias).__name__}.")
        expect(my_bias.report.rows_in >= 3,
               f"`my_bias` judged {my_bias.report.rows_in} row(s) again; use a sample of at least 3 rows so the flip "
               "rate means something.")
        expect(my_bias.compared + my_bias.ties == len(my_bias.rows) and 0.0 <= my_bias.flip_rate <= 1.0
               and math.isclose(my_bias.flip_rate, my_bias.changed / my_bias.compared if my_bias.compared else 0.0),
               "`my_bias` does not add up: make it with `position_bias(...)` and leave it as it is.")
        sampling = my_bias.sampling_flip_rate
        expect(sampling is None or (my_bias.sampling_compared and math.isclose(
                   sampling, my_bias.sampling_changed / my_bias.sampling_compared)) or (
                   not my_bias.sampling_compared and sampling == 0.0),
               "`my_bias`'s control does not add up: make it with `position_bias(...)` and leave it as it is.")
        noise, cause = max((my_bias.flip_rate, "when the candidates were reversed"),
                           (sampling or 0.0, "when it was asked again in the same order"))
        expect(noise <= HIGH_FLIP_RATE or my_rule == "best-vs-worst",
               f"`my_bias` says the judge changed its mind on {noise:.0%} of the rows {cause}, more than "
               f"{HIGH_FLIP_RATE:.0%}: its close ratings are noise. Which rule only pairs answers far apart in "
               "rating?")
        pairs = dataset_of(my_final_pairs, "my_final_pairs", "binarize(...)")
        _check_pairs(pairs, "my_final_pairs")
        rule = _rule_of(my_final_pairs, "my_final_pairs")
        expect(rule == my_rule, f"`my_final_pairs` was made with {rule!r}, not with your choice `my_rule` "
                                f"({my_rule!r}): pass `rule=my_rule`.")
        expect(len(pairs) > 0, "`my_final_pairs` has no pairs: look at its `.report` (and `.dropped_rows`) to see why "
                               "the rows were dropped.")
        control = f", {sampling:.0%} from sampling alone" if sampling is not None else ""
        return (f"Flip rate {my_bias.flip_rate:.0%} from the order on {my_bias.compared} comparable rows{control}; "
                f"{len(pairs)} pairs made with {my_rule}. Write down why you chose it: the next person to train on "
                "your data will ask.")


_PAIR_CASES = (
    Case("three different ratings", ([4, 2, 5],), (2, 1)),
    Case("every candidate rated the same: no pair", ([3, 3, 3],), None),
    Case("two candidates tie for best: the first of them is chosen", ([5, 1, 5],), (0, 1)),
    Case("two candidates tie for worst: the first of them is rejected", ([2, 4, 2],), (1, 0)),
    Case("a rating that did not parse (None) is skipped", ([None, 3, 1],), (1, 2)),
    Case("only one parsed rating: no pair", ([None, 4, None],), None),
    Case("no candidates", ([],), None),
    Case("mean ratings over four aspects", ([3.75, 4.25, 3.5, 4.0],), (1, 2)),
)


class BestVsWorst(Exercise):
    notebook = NOTEBOOK
    name = "q4"
    title = "Write the best-vs-worst rule, ties included"
    level = Level.DEFAULT
    variables = ("my_best_vs_worst",)
    hints = (
        "First keep the candidates that have a rating: `rated = [(i, r) for i, r in enumerate(ratings) if r is not "
        "None]`; with fewer than two there is no pair.",
        "The best is the highest rating, and among equals the lowest index: `max` and `min` return the first of "
        "equal items when you compare only the rating (`key=lambda pair: pair[1]`).",
        "When the best rating equals the worst, every rated candidate ties: return None, not a pair of two equally "
        "good answers.",
    )

    def _check(self, my_best_vs_worst: Any) -> str:
        def read(got: Any, case: Case) -> Any:
            if got is None:
                return None
            expect(isinstance(got, (tuple, list)) and len(got) == 2 and all(isinstance(i, int) for i in got),
                   f"it returned {got!r}; return a pair of indices (chosen, rejected), or None when there is no pair")
            return tuple(got)

        n = run_cases(my_best_vs_worst, "my_best_vs_worst", _PAIR_CASES, read=read)
        return (f"Your rule passed all {n} hidden cases. `binarize(..., rule=\"best-vs-worst\")` does the same, except "
                "that it breaks ties at random (seeded), so no position is favoured.")


q1 = JudgeAndBinarize()
q2 = EvolvedCandidates()
q3 = PositionBiasAndRule()
q4 = BestVsWorst()
EXERCISES = (q1, q2, q3, q4)
