"""smolsynth.formats: the vocabulary, same_answer, conversation_problem, to_sft, and the two training-format checks."""

from __future__ import annotations

import pytest

from smolsynth import formats
from smolsynth.formats import (DROP_REASONS, conversation_problem, messages_to_prompt_completion, same_answer, to_sft,
                               validate_dpo_dataset, validate_sft_dataset)
from smolsynth.rows import Result

U = {"role": "user", "content": "Q"}
A = {"role": "assistant", "content": "A"}
S = {"role": "system", "content": "S"}


def test_every_reason_the_formats_give_is_documented() -> None:
    for reason in ("missing_instruction", "missing_response", "empty_turn", "invalid_conversation",
                   "chosen_equals_rejected", "too_long_for_max_length", "truncated"):
        assert reason in DROP_REASONS and DROP_REASONS[reason]
    assert "identical_texts" not in DROP_REASONS  # renamed to chosen_equals_rejected
    assert (formats.GENERATION, formats.GENERATIONS, formats.GENERATION_MODELS, formats.GENERATION_SOURCES) == \
        ("generation", "generations", "generation_models", "generation_sources")


# -------------------------------------------------------------------------------------------------- same_answer
@pytest.mark.parametrize(("a", "b", "same"), [
    ("Paris.", " Paris. ", True),
    ("Paris.", "paris.", False),
    ([{"role": "assistant", "content": "a"}], "a ", True),
    ([{"role": "assistant", "content": "a"}], [{"role": "assistant", "content": " a"}], True),
    ([{"role": "assistant", "content": "a"}], "b", False),
    (None, None, False),  # nothing is not "the same answer"
    ("", "", True),
    ([{"role": "assistant", "content": "a"}, {"role": "assistant", "content": "a"}], "a", False),
])
def test_same_answer(a, b, same) -> None:
    assert same_answer(a, b) is same
    assert same_answer(b, a) is same


# -------------------------------------------------------------------------------------------- conversation_problem
@pytest.mark.parametrize(("messages", "problem"), [
    ([U, A], None),
    ([S, U, A], None),
    ([S, U, A, U, A], None),
    ([U], "missing_response"),
    ([S], "missing_response"),
    ([U, A, U], "missing_response"),
    ([A, U], "invalid_conversation"),
    ([U, U, A], "invalid_conversation"),
    ([U, S, A], "invalid_conversation"),
    ([], "invalid_conversation"),
    (None, "invalid_conversation"),
    ("Q: hi A: hello", "invalid_conversation"),
    ([U, "A"], "invalid_conversation"),
    ([U, {"role": "assistant", "content": "  "}], "empty_turn"),
    ([{"role": "user", "content": None}, A], "empty_turn"),
])
def test_conversation_problem(messages, problem) -> None:
    assert conversation_problem(messages) == problem
    if problem:
        assert problem in DROP_REASONS


# -------------------------------------------------------------------------------------------------------- to_sft
ROWS = [{"instruction": "Hi", "generation": "Hello", "sys": "Be kind."},
        {"instruction": " ", "generation": "x", "sys": None},
        {"instruction": None, "generation": "x", "sys": None},
        {"instruction": "Hi", "generation": "", "sys": "Be kind."},
        {"instruction": "Hi", "generation": None, "sys": ""}]


@pytest.mark.parametrize("fmt", ["messages", "prompt_completion"])
def test_to_sft_single_turn_in_both_formats_with_every_drop_reason(fmt) -> None:
    result = to_sft(ROWS, system_column="sys", format=fmt)
    assert isinstance(result, Result)
    assert result.report.dropped == {"missing_instruction": 2, "missing_response": 2}
    assert result.report.rows_in == 5 == result.report.rows_out + result.report.dropped_total
    assert [r["reason"] for r in result.dropped_rows] == ["missing_instruction", "missing_instruction",
                                                          "missing_response", "missing_response"]
    assert result.dropped_rows[0]["instruction"] == " "  # the row as it was, plus its reason
    expected = [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello"}]
    if fmt == "messages":
        assert result.rows == [{"messages": expected}]
    else:
        assert result.rows == [{"prompt": expected[:2], "completion": expected[2:]}]
    assert result.dataset.to_list() == result.rows


def test_to_sft_reads_answers_from_generation_and_other_columns_when_named() -> None:
    assert to_sft([{"instruction": "Hi", "generation": "Hello"}]).rows == \
        [{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}]
    named = to_sft([{"q": "Hi", "a": "Hello"}], instruction_column="q", response_column="a")
    assert named.rows[0]["messages"][1]["content"] == "Hello"
    no_system = to_sft([{"instruction": "Hi", "generation": "Hello"}], format="prompt_completion").rows[0]
    assert no_system["prompt"] == [{"role": "user", "content": "Hi"}]


@pytest.mark.parametrize("fmt", ["messages", "prompt_completion"])
def test_to_sft_multi_turn_with_every_drop_reason(fmt) -> None:
    conversations = [{"c": [U, A, U, {"role": "assistant", "content": "A2"}]},
                     {"c": [S, U, A]},
                     {"c": [U]},
                     {"c": [A, U]},
                     {"c": [U, {"role": "assistant", "content": ""}]},
                     {"c": None}]
    result = to_sft(conversations, messages_column="c", format=fmt)
    assert result.report.dropped == {"missing_response": 1, "invalid_conversation": 2, "empty_turn": 1}
    assert result.report.rows_in == 6 and result.report.rows_out == 2
    if fmt == "messages":
        assert [m["role"] for m in result.rows[0]["messages"]] == ["user", "assistant"] * 2
        assert result.rows[1]["messages"] == [S, U, A]
    else:
        assert result.rows[0]["completion"] == [{"role": "assistant", "content": "A2"}]
        assert result.rows[1] == {"prompt": [S, U], "completion": [A]}


def test_to_sft_errors_name_the_argument() -> None:
    with pytest.raises(ValueError, match="format='chatml'"):
        to_sft(ROWS, format="chatml")
    with pytest.raises(ValueError, match="column 'generation' is not in the data.*response_column="):
        to_sft([{"instruction": "a", "response": "b"}])
    with pytest.raises(ValueError, match="column 'conv'"):
        to_sft([{"c": [U, A]}], messages_column="conv")
    with pytest.raises(TypeError, match="data=None"):
        to_sft(None)


# --------------------------------------------------------------------------------------- the training formats
def _pair(i: int, *, same: bool = False) -> dict:
    chosen = [{"role": "assistant", "content": f"{i} plus {i} is {2 * i}."}]
    return {"prompt": [{"role": "user", "content": f"What is {i} plus {i}?"}], "chosen": chosen,
            "rejected": chosen if same else [{"role": "assistant", "content": "No idea."}], "chosen_rating": 5}


def _chat(i: int, answer: str = "fine") -> dict:
    return {"messages": [U, {"role": "assistant", "content": answer}], "id": i}


def test_both_validators_return_the_same_shape() -> None:
    sft = validate_sft_dataset([_chat(0), _chat(1, "  ")])
    dpo = validate_dpo_dataset([_pair(0), _pair(1, same=True)])
    for result, columns, reason in ((sft, ["prompt", "completion"], "missing_response"),
                                    (dpo, ["prompt", "chosen", "rejected"], "chosen_equals_rejected")):
        assert isinstance(result, Result)
        assert result.dataset.column_names == columns  # extra columns dropped
        assert (result.report.rows_in, result.report.rows_out, result.report.dropped) == (2, 1, {reason: 1})
        assert [r["reason"] for r in result.dropped_rows] == [reason]
        assert len(result.dropped) == 1


def test_sft_validation_turns_messages_into_prompt_and_completion() -> None:
    msgs = [S, U, A, {"role": "user", "content": "Q2"}, {"role": "assistant", "content": "A2"}]
    result = validate_sft_dataset([{"messages": msgs, "source": "x"}])
    assert result.rows == [{"prompt": msgs[:-1], "completion": msgs[-1:]}]
    assert messages_to_prompt_completion([{"messages": msgs}])[0] == result.rows[0]
    kept = validate_sft_dataset([{"prompt": [U], "completion": [A], "extra": 1}])
    assert kept.rows == [{"prompt": [U], "completion": [A]}]
    strings = validate_sft_dataset([{"prompt": "Q", "completion": "A"}, {"prompt": "Q", "completion": " "}])
    assert strings.rows == [{"prompt": "Q", "completion": "A"}] and strings.report.dropped == {"missing_response": 1}


@pytest.mark.parametrize(("rows", "match"), [
    ([{"text": "hello"}], r"no 'messages' column \(columns: \['text'\]\)"),
    ([_chat(0), {"messages": [U]}], r"Column 'messages', row 1: the last message must be the assistant"),
    ([{"messages": [A]}], r"Column 'messages', row 0: no user turn"),
    ([{"messages": "Q: hi A: hello"}], r"Column 'messages', row 0: expected a non-empty list of messages"),
    ([_chat(0), _chat(1), {"messages": [{"role": "user", "text": "Q"}]}], r"Column 'messages', row 2: .*'role' and"),
    ([{"prompt": [U], "completion": "A"}, {"prompt": [U], "completion": [A]}],
     r"Column 'completion', row 0: expected a non-empty list"),
    ([{"prompt": "Q", "completion": "A"}, {"prompt": "Q", "completion": [A]}], r"Column 'completion', row 1: mixes"),
])
def test_sft_format_errors_name_the_column_and_the_row(rows, match) -> None:
    with pytest.raises(ValueError, match=match):
        validate_sft_dataset(rows)


def test_validators_refuse_no_data_naming_it() -> None:
    with pytest.raises(ValueError, match="SFT data is empty"):
        validate_sft_dataset([])
    with pytest.raises(ValueError, match="DPO data is empty"):
        validate_dpo_dataset([])
    with pytest.raises(TypeError, match="SFT data=None"):
        validate_sft_dataset(None)
    with pytest.raises(TypeError, match="DPO data is a str"):
        validate_dpo_dataset("prompt,chosen,rejected")


def _mutated(change, row: int = 0, n: int = 2) -> list:
    rows = [_pair(i) for i in range(n)]
    change(rows[row])
    return rows


@pytest.mark.parametrize(("rows", "match"), [
    (_mutated(lambda r: r.pop("rejected")), r"no 'rejected' column"),
    (_mutated(lambda r: r.update(prompt=[A]), row=1), r"Column 'prompt', row 1: the prompt must end with a user"),
    (_mutated(lambda r: r.update(chosen=r["chosen"] * 2)), r"Column 'chosen', row 0: expected a list with one assis"),
    (_mutated(lambda r: r.update(rejected=[U]), row=1), r"Column 'rejected', row 1: expected a list with one"),
    (_mutated(lambda r: r.update(chosen="plain"), row=1), r"Column 'chosen', row 1: expected a non-empty list"),
    ([{"prompt": "Q", "chosen": "A", "rejected": "B"}, {"prompt": "Q2", "chosen": [A], "rejected": "B"}],
     r"Column 'chosen', row 1: a message list in string-format data"),
])
def test_dpo_format_errors_name_the_column_and_the_row(rows, match) -> None:
    with pytest.raises(ValueError, match=match):
        validate_dpo_dataset(rows)


def test_dpo_validation_drops_and_counts_chosen_equals_rejected() -> None:
    rows = [_pair(i) for i in range(4)]
    rows[1]["rejected"] = rows[1]["chosen"]
    rows[3]["rejected"] = [{"role": "assistant", "content": " " + rows[3]["chosen"][0]["content"] + "\n"}]
    result = validate_dpo_dataset(rows)
    assert result.report.dropped == {"chosen_equals_rejected": 2}
    assert [r["prompt"] for r in result.rows] == [rows[0]["prompt"], rows[2]["prompt"]]
    strings = validate_dpo_dataset([{"prompt": "Q", "chosen": "A", "rejected": "B"},
                                    {"prompt": "Q", "chosen": "A", "rejected": "A "}])
    assert strings.report.dropped == {"chosen_equals_rejected": 1} and strings.rows[0]["rejected"] == "B"
    with pytest.raises(ValueError, match="every row has chosen == rejected"):
        validate_dpo_dataset([_pair(0, same=True)])
