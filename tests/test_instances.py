"""Self-Instruct's instance stage (smolsynth.instructions.self_instruct_instances): the parser and the paper's
clean-up on hand-made answers, and the whole stage on the tiny model (real constrained decoding: every
classification answer is Yes or No, every row is accounted for)."""

from __future__ import annotations

import pytest

from smolsynth.formats import DROP_REASONS
from smolsynth.instructions import clean_instances, parse_instances, self_instruct_instances


def test_parse_instances_reads_both_orders_and_no_input():
    text = "Input: none\nOutput: Paris is the capital.\n\nInput: Spain\nOutput: Madrid"
    assert parse_instances(text, "input-first") == [{"input": "", "output": "Paris is the capital."},
                                                     {"input": "Spain", "output": "Madrid"}]
    labelled = "Class label: spam\nInput: WIN A PRIZE NOW\n\nClass label: not spam\nInput: Lunch at noon?"
    assert parse_instances(labelled, "output-first") == [{"input": "WIN A PRIZE NOW", "output": "spam"},
                                                         {"input": "Lunch at noon?", "output": "not spam"}]
    assert parse_instances("Sure! Here are some examples.", "input-first") == []


def test_clean_instances_applies_each_of_the_papers_rules():
    rows = [
        {"instruction": "Add.", "input": "1+1", "output": "2"},
        {"instruction": "Add.", "input": "1+1", "output": "2"},  # an exact repeat
        {"instruction": "Capital?", "input": "France", "output": "Paris"},
        {"instruction": "Capital?", "input": "France", "output": "Lyon"},  # same input, other output: task dropped
        {"instruction": "Echo.", "input": "hi", "output": "hi"},
        {"instruction": "List.", "input": "", "output": "Here are three:"},
        {"instruction": "Name one.", "input": "", "output": ""},
        {"instruction": "Greet.", "input": "", "output": "Hello!"},
    ]
    result = clean_instances(rows)
    assert [(r["instruction"], r["output"]) for r in result.rows] == [("Add.", "2"), ("Greet.", "Hello!")]
    assert result.report.dropped == {"duplicate_instance": 1, "conflicting_outputs": 2, "input_equals_output": 1,
                                     "ends_with_colon": 1, "empty_output": 1}
    assert set(result.report.dropped) <= set(DROP_REASONS)


def test_instances_on_the_tiny_model_are_constrained_and_accounted_for(engine_home):
    instructions = ["Sort these words alphabetically.", "Is this email spam or not?", "Give me a synonym of happy.",
                    "Translate good night into German."]
    result = self_instruct_instances(instructions, max_new_tokens=48, progress=False)
    classify = result.steps[0]
    assert classify.rows_in == 4 and classify.rows_out == 4  # constrained: every answer is Yes or No
    assert result.report.rows_in == result.report.rows_out + sum(result.report.dropped.values())
    assert set(result.report.dropped) <= set(DROP_REASONS)
    assert result.params["instructions"] == 4
    written = [s for s in result.steps if s.step.startswith("instances (")]
    assert sum(s.rows_in for s in written) == 4  # every instruction went to one of the two orders
    for row in result.rows:
        assert row["order"] == ("output-first" if row["is_classification"] else "input-first") and row["output"]


@pytest.mark.parametrize(("kwargs", "message"), [({"instances": 0}, "instances"), ({"instances": 6}, "instances"),
                                                 ({"instructions": [{"text": "x"}]}, "'instruction' column"),
                                                 ({"instructions": ["ok", ""]}, "instructions")])
def test_instances_refuse_bad_arguments_before_any_model_loads(kwargs, message, monkeypatch):
    import smolsynth.llm

    monkeypatch.setattr(smolsynth.llm.LocalLLM, "load", lambda self: pytest.fail("loaded a model"))
    with pytest.raises((ValueError, TypeError), match=message):
        self_instruct_instances(**{"instructions": ["Name a colour."], **kwargs})
