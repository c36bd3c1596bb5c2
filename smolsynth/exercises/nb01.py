"""Exercises of notebook 01, "Instruction datasets".

``q1`` 🐢 Magpie instructions turned into an SFT dataset; ``q2`` 🐕 Self-Instruct from your own seeds, and what its
ROUGE-L filter removed; ``q3`` 🦁 Evol-Instruct on your own seeds, survivors with responses, as SFT data; ``q4`` 🐢 the
learner writes Self-Instruct's novelty filter (ROUGE-L against a growing pool), run on hidden cases. The checks judge
structure, accounting and behaviour (columns, counts that add up, the filter's promise kept), never wording, so they
hold for the tiny offline model in CI and for a real model on a learner's machine.

    >>> from smolsynth.exercises import ____, nb01
    >>> nb01.q1.evaluate(my_magpie=____, my_sft=____).status
    'not_attempted'
"""

from __future__ import annotations

from typing import Any, List

from smolsynth.exercises.core import Case, Exercise, Level, dropped_count, expect, rows_of, run_cases

NOTEBOOK = "01_instructions"


def _result(value: Any, name: str, made_by: str) -> Any:
    """A :class:`~smolsynth.rows.Result` (``.rows``, ``.dropped_rows``, ``.report``), or Incorrect with a
    learner-facing reason."""
    expect(all(hasattr(value, a) for a in ("rows", "dropped_rows", "report")),
           f"`{name}` should be what `{made_by}` returns (a result with `.rows`/`.dataset`, `.dropped_rows` and "
           f"`.report`); it is a {type(value).__name__}.")
    return value


def _accounted(value: Any, name: str) -> None:
    report = value.report
    expect(report.rows_in == report.rows_out + report.dropped_total and report.rows_out == len(value.rows),
           f"The numbers of `{name}` do not add up (rows in = rows out + rows dropped): was its dataset changed "
           "after it was made? Make it again with the function, unchanged.")


def _sft_rows(value: Any, name: str) -> List[dict]:
    dataset = getattr(value, "dataset", value)
    expect(hasattr(dataset, "column_names"),
           f"`{name}` should be what `to_sft(...)` returns (or its `.dataset`); it is a {type(value).__name__}.")
    if len(dataset) == 0 and not dataset.column_names:  # nothing to convert: an empty result has no columns
        return []
    expect(dataset.column_names == ["messages"],
           f"`{name}` has the columns {dataset.column_names}; TRL's SFTTrainer reads a dataset with only a "
           "`messages` column here. Make it with `to_sft(...)` and keep the default format.")
    rows = rows_of(dataset)
    for row in rows:
        roles = [m.get("role") for m in row["messages"] if m.get("role") != "system"]
        expect(roles[:2] == ["user", "assistant"] and roles[-1] == "assistant",
               f"A conversation in `{name}` does not go user -> assistant: each row must pair an instruction "
               "with its response.")
    return rows


class MagpieToSft(Exercise):
    notebook = NOTEBOOK
    name = "q1"
    title = "Magpie instructions, ready for SFT"
    level = Level.DEFAULT
    variables = ("my_magpie", "my_sft")
    hints = (
        "`my_magpie = magpie(N_EXERCISE, ...)` generates instructions *and* responses (leave `only_instruction` "
        "off), with the settings used above (`model=model_id`, `max_new_tokens=MAX_NEW_TOKENS`, "
        "`response_temperature=RESPONSE_TEMPERATURE`).",
        "`my_sft = to_sft(my_magpie.dataset)` pairs each instruction with its answer; the `generation` column is "
        "found by itself.",
        "Ask for at least 3 rows, so that some survive the filters even with a noisy model.",
    )

    def _check(self, my_magpie: Any, my_sft: Any) -> str:
        result = _result(my_magpie, "my_magpie", "magpie(...)")
        columns = set(result.rows[0]) if result.rows else set()
        steps = [getattr(r, "step", "") for r in getattr(result, "steps", [])]
        expect("magpie" in steps or result.report.step == "magpie",
               "`my_magpie` was not made by `magpie(...)`: use the function from `smolsynth.instructions`.")
        expect(result.report.rows_in >= 3, f"`my_magpie` asked for {result.report.rows_in} row(s); the exercise "
                                           "asks for at least 3.")
        _accounted(result, "my_magpie")
        expect(not result.rows or {"instruction", "generation"} <= columns,
               "`my_magpie` has instructions but no `generation` column: generate answers too (do not pass "
               "`only_instruction=True`), so that the SFT data has answers to learn from.")
        rows = _sft_rows(my_sft, "my_sft")
        instructions = {r["instruction"] for r in result.rows}
        users = [next(m["content"] for m in r["messages"] if m["role"] == "user") for r in rows]
        expect(set(users) <= instructions,
               "`my_sft` holds instructions that are not in `my_magpie`: convert `my_magpie` itself.")
        dropped = dropped_count(my_sft)
        expect(len(rows) > 0, f"`my_sft` has no conversation: none of the {result.report.rows_in} rows of `my_magpie` "
                              "became one. Look at `my_magpie.report` and `my_sft.report` to see why they were "
                              "dropped, then ask for more rows.")
        expect(len(rows) + dropped == len(result.rows),
               f"`my_sft` has {len(rows)} rows (+{dropped} dropped) but `my_magpie` kept {len(result.rows)}: "
               "convert every row once.")
        return (f"{result.report.rows_in} Magpie rows asked for, {len(result.rows)} survived the filters, "
                f"{len(rows)} SFT conversations: the format TRL's SFTTrainer reads as is.")


class SelfInstructFromSeeds(Exercise):
    notebook = NOTEBOOK
    name = "q2"
    title = "Self-Instruct from your own seeds, and what the ROUGE-L filter removed"
    level = Level.VARIANT
    variables = ("my_seeds", "my_self_instruct", "my_too_similar")
    hints = (
        "`my_seeds` is a list of at least 6 different instructions of your own (one domain is fine: cooking, "
        "travel, code review...).",
        "`my_self_instruct = self_instruct(my_seeds, ...)`, with the same settings as the run above.",
        "The rows the novelty filter removed are the dropped rows whose `reason` is `too_similar`, e.g. "
        "`[r for r in my_self_instruct.dropped_rows if r[\"reason\"] == \"too_similar\"]`.",
    )

    def _check(self, my_seeds: Any, my_self_instruct: Any, my_too_similar: Any) -> str:
        from smolsynth.instructions import rouge_l

        expect(isinstance(my_seeds, (list, tuple)) and all(isinstance(s, str) and s.strip() for s in my_seeds),
               "`my_seeds` should be a list of non-empty strings, one seed instruction each.")
        expect(len(my_seeds) >= 6, f"`my_seeds` has {len(my_seeds)} seeds; the exercise asks for at least 6, so "
                                   "that each prompt can show the model 6 examples, as in the paper.")
        expect(len({s.strip().lower() for s in my_seeds}) == len(my_seeds),
               "Two of your seeds are the same: the pool should start with different instructions.")
        result = _result(my_self_instruct, "my_self_instruct", "self_instruct(...)")
        expect(getattr(result, "params", {}).get("seeds") == list(my_seeds),
               "`my_self_instruct` was not made from `my_seeds`: run `self_instruct(my_seeds, ...)`.")
        _accounted(result, "my_self_instruct")
        kept = [r["instruction"] for r in result.rows]
        for i, text in enumerate(kept):
            expect(all(rouge_l(o, text) <= 0.7 + 1e-9 for o in list(my_seeds) + kept[:i]),
                   "An instruction kept in `my_self_instruct` has ROUGE-L above 0.7 against a seed or an earlier "
                   "instruction: was the dataset changed after the run?")
        removed = rows_of(my_too_similar)
        expected = [r for r in result.dropped_rows if r.get("reason") == "too_similar"]
        expect(all(isinstance(r, dict) and r.get("reason") == "too_similar" for r in removed),
               "`my_too_similar` holds rows that the ROUGE-L filter did not remove: keep only the dropped rows "
               "whose `reason` is `too_similar`.")
        expect(len(removed) == len(expected),
               f"`my_too_similar` has {len(removed)} rows, but the report counts {len(expected)} removed as "
               "too similar: take all of them from `my_self_instruct.dropped_rows`.")
        expect(sorted(str(r.get("instruction")) for r in removed) == sorted(str(r["instruction"]) for r in expected),
               "`my_too_similar` has the right number of rows, but not the rows `my_self_instruct` dropped (their "
               "instructions differ): take them from `my_self_instruct.dropped_rows`, as they are.")
        return (f"{len(kept)} new instructions kept; the ROUGE-L filter removed {len(expected)} "
                "(each with the instruction it was too close to, in `most_similar`).")


class EvolOwnSeeds(Exercise):
    notebook = NOTEBOOK
    name = "q3"
    title = "Evolve your own seeds; keep the survivors with responses"
    level = Level.OWN
    variables = ("my_evol_seeds", "my_evolved", "my_evol_sft")
    hints = (
        "`my_evol_seeds`: at least 3 instructions from your own use case.",
        "`my_evolved = evol_instruct(my_evol_seeds, rounds=EVOL_ROUNDS, ...)`: its rows are only the "
        "survivors, each with its answer in `generation`.",
        "`my_evol_sft = to_sft(my_evolved.dataset)`.",
    )

    def _check(self, my_evol_seeds: Any, my_evolved: Any, my_evol_sft: Any) -> str:
        expect(isinstance(my_evol_seeds, (list, tuple)) and all(isinstance(s, str) and s.strip()
                                                                for s in my_evol_seeds),
               "`my_evol_seeds` should be a list of non-empty strings.")
        expect(len(my_evol_seeds) >= 3, f"`my_evol_seeds` has {len(my_evol_seeds)} seeds; use at least 3.")
        result = _result(my_evolved, "my_evolved", "evol_instruct(...)")
        expect(getattr(result, "params", {}).get("seeds") == list(my_evol_seeds),
               "`my_evolved` was not made from `my_evol_seeds`: run `evol_instruct(my_evol_seeds, ...)`.")
        _accounted(result, "my_evolved")
        survivors = result.rows
        expect(all(isinstance(r.get("generation"), str) and r["generation"].strip() for r in survivors),
               "Some rows of `my_evolved` have no answer (`generation`): keep the survivors as `evol_instruct` "
               "returns them.")
        rows = _sft_rows(my_evol_sft, "my_evol_sft")
        expect(len(rows) == len(survivors),
               f"`my_evol_sft` has {len(rows)} rows but {len(survivors)} evolutions survived: convert the "
               "survivors (`my_evolved.dataset`), all of them.")
        reasons = result.report.dropped
        why = ", ".join(f"{k}: {v}" for k, v in sorted(reasons.items())) or "none"
        return (f"{result.report.rows_in} evolutions tried, {len(survivors)} survived (eliminated: {why}); "
                f"{len(rows)} SFT conversations.")


_LUNCH, _DINNER = "Give me three easy ideas for a quick healthy lunch", "Give me three easy ideas for a cheap family dinner"
_NOVELTY_CASES = (
    Case("no candidates", ([], ["Explain how tides work."]), []),
    Case("a candidate that repeats a seed", (["Explain how tides work.", "Name three birds that live in cities."],
                                             ["Explain how tides work."]), ["Name three birds that live in cities."]),
    Case("two near-copies among the candidates: the pool grows with every kept one",
         (["Write a poem about the sea.", "Write a poem about the sea, please.", "List four fruits rich in vitamin C."],
          ["Explain how tides work."]), ["Write a poem about the sea.", "List four fruits rich in vitamin C."]),
    Case("ROUGE-L exactly 0.7 (7 of 10 words in order) is kept: only above the threshold is too similar",
         ([_DINNER], [_LUNCH]), [_DINNER]),
    Case("another threshold: 0.5 drops a pair at 0.67 that 0.7 keeps",
         (["Write a story about the forest.", "Name a city on the Danube."], ["Write a poem about the sea."]),
         ["Name a city on the Danube."], {"threshold": 0.5}),
    Case("compare with every instruction in the pool, not only the last one",
         (["Explain how tides work, please."], ["Explain how tides work.", "Name a city on the Danube."]), []),
)


class NoveltyFilter(Exercise):
    notebook = NOTEBOOK
    name = "q4"
    title = "Write Self-Instruct's novelty filter"
    level = Level.DEFAULT
    variables = ("my_novelty_filter",)
    hints = (
        "Keep a list of references that starts as a copy of `pool` (`list(pool)`, so the caller's list is not "
        "changed). Go through the candidates in order.",
        "A candidate is kept when `rouge_l(reference, candidate) <= threshold` for every reference: `all(...)`.",
        "When you keep a candidate, append it to the references too: the next candidates are compared with it. "
        "That is what stops a list of five rewordings of one idea.",
    )

    def _check(self, my_novelty_filter: Any) -> str:
        def read(got: Any, case: Case) -> Any:
            expect(isinstance(got, list) and all(isinstance(t, str) for t in got),
                   f"it returned a {type(got).__name__}; return the list of kept candidates (strings), in order")
            return got

        n = run_cases(my_novelty_filter, "my_novelty_filter", _NOVELTY_CASES, read=read)
        return (f"Your filter passed all {n} hidden cases. `filter_instructions` in smolsynth does the same, after "
                "the rule filters, and records for each row the most similar instruction and its score.")


q1 = MagpieToSft()
q2 = SelfInstructFromSeeds()
q3 = EvolOwnSeeds()
q4 = NoveltyFilter()
EXERCISES = (q1, q2, q3, q4)
