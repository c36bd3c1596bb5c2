"""Constrained decoding: the tiny random model's output always parses when a JSON schema or a regex is given."""

from __future__ import annotations

import json
import re

import jsonschema
import pytest

SCHEMA = {
    "type": "object",
    "properties": {"scores": {"type": "array", "items": {"type": "integer"}}, "label": {"type": "string"}},
    "required": ["scores", "label"],
}


def test_50_of_50_generations_parse_and_validate_against_a_json_schema(tiny_llm_factory):
    llm = tiny_llm_factory(structured_output={"format": "json", "schema": SCHEMA})
    chats = [[{"role": "user", "content": f"Give me record {i} as JSON."}] for i in range(50)]
    out = llm.generate(chats, max_new_tokens=48, temperature=1.0)
    texts = [o["generations"][0] for o in out]
    for text in texts:
        jsonschema.validate(json.loads(text), SCHEMA)
    # the same model without the grammar writes text that is not JSON at all
    free = tiny_llm_factory().generate(chats[:5], max_new_tokens=48, temperature=1.0)
    assert not any(_parses(o["generations"][0]) for o in free)


def _parses(text: str) -> bool:
    try:
        json.loads(text)
        return True
    except ValueError:
        return False


def test_closing_keeps_output_valid_even_with_a_tiny_token_budget(tiny_llm_factory):
    llm = tiny_llm_factory(structured_output={"format": "json", "schema": SCHEMA})
    chats = [[{"role": "user", "content": f"JSON {i}"}] for i in range(16)]
    for budget in (24, 32):
        out = llm.generate(chats, max_new_tokens=budget, temperature=1.0)
        for o in out:
            jsonschema.validate(json.loads(o["generations"][0]), SCHEMA)
            assert o["statistics"]["output_tokens"][0] <= budget


def test_regex(tiny_llm_factory):
    pattern = r"(yes|no), because [a-z ]{3,20}\."
    llm = tiny_llm_factory(structured_output={"format": "regex", "schema": pattern})
    out = llm.generate([[{"role": "user", "content": f"Q{i}"}] for i in range(12)], max_new_tokens=32,
                       temperature=1.0)
    for o in out:
        assert re.fullmatch(pattern, o["generations"][0]), o["generations"][0]


def test_per_input_structured_output_from_distilabels_structured_generation(engine_home, tiny_llm_factory):
    """distilabel's tasks pass (messages, structured_output) tuples; each row gets its own grammar."""
    from distilabel.steps.tasks import StructuredGeneration

    from smolsynth.runner import run

    rows = [
        {"instruction": "A number list", "structured_output": {"format": "json", "schema": SCHEMA}},
        {"instruction": "A colour", "structured_output": {"format": "regex", "schema": "(red|green|blue)"}},
    ] * 3
    task = StructuredGeneration(llm=tiny_llm_factory(generation_kwargs={"max_new_tokens": 40, "temperature": 1.0}))
    result = run(task, rows, progress=False)
    assert result.report.rows_out == 6, result.dropped_rows
    for row in result.rows:  # mixed schema kinds per row: not a Dataset column
        if row["instruction"] == "A colour":
            assert row["generation"] in {"red", "green", "blue"}
        else:
            jsonschema.validate(json.loads(row["generation"]), SCHEMA)


def test_ultrafeedback_regex_gives_one_rating_per_generation(engine_home, tiny_llm_factory):
    from distilabel.steps.tasks import UltraFeedback

    from smolsynth.ultrafeedback import ultrafeedback_regex
    from smolsynth.runner import run

    rows = [{"instruction": f"Question {i}?", "generations": [f"answer a{i}", f"answer b{i}", f"c{i}"]}
            for i in range(6)]
    llm = tiny_llm_factory(structured_output={"format": "regex", "schema": ultrafeedback_regex(3,
                                                                                            max_rationale_chars=40)},
                           generation_kwargs={"max_new_tokens": 160, "temperature": 1.0})
    result = run(UltraFeedback(llm=llm, aspect="overall-rating"), rows, progress=False)
    assert result.report.dropped == {}, result.dropped.to_list()
    for row in result.dataset.to_list():
        assert len(row["ratings"]) == 3 and all(r in {1, 2, 3, 4, 5} for r in row["ratings"])


def test_ultrafeedback_json_schema_with_default_structured_output(engine_home, tiny_llm_factory):
    from distilabel.steps.tasks import UltraFeedback

    from smolsynth.ultrafeedback import ultrafeedback_schema
    from smolsynth.runner import run

    rows = [{"instruction": f"Q{i}?", "generations": [f"a{i}", f"b{i}"]} for i in range(4)]
    llm = tiny_llm_factory(structured_output={"format": "json", "schema": ultrafeedback_schema(2, max_rationale_chars=30)},
                           generation_kwargs={"max_new_tokens": 96, "temperature": 1.0})
    result = run(UltraFeedback(llm=llm, use_default_structured_output=True), rows, progress=False)
    assert result.report.rows_out == 4, result.dropped.to_list()
    assert all(len(r["ratings"]) == 2 for r in result.dataset.to_list())


def test_bad_structured_output_is_refused_at_construction(tiny_path):
    from smolsynth.llm import LocalLLM

    with pytest.raises(ValueError, match="format"):
        LocalLLM("smolsynth/tiny", structured_output={"format": "yaml", "schema": {}})
    with pytest.raises(ValueError, match="schema"):
        LocalLLM("smolsynth/tiny", structured_output={"format": "json"})


def test_a_grammar_within_a_budget_below_the_tiny_models_floor_still_runs(engine_home, tiny_llm_factory):
    """The tiny model asks for 4 new tokens at least; a grammar row with a 3-token budget overrides that floor once.
    The budget is too small to leave the choice to the model: the engine closes the grammar itself, and says so."""
    llm = tiny_llm_factory(structured_output={"format": "regex", "schema": "(yes|no)"})
    out = llm.generate([[{"role": "user", "content": "Hi?"}]], max_new_tokens=3, temperature=0.0)
    assert out[0]["generations"][0] in {"yes", "no"} and out[0]["statistics"]["finish_reasons"] == ["closed"]
    roomy = llm.generate([[{"role": "user", "content": "Hi?"}]], max_new_tokens=12, temperature=0.0)
    assert roomy[0]["statistics"]["finish_reasons"] == ["stop"]  # the model ended the grammar by itself


def test_the_grammar_masks_filled_in_parallel_give_the_outputs_of_one_thread(tiny_llm_factory):
    """``parallel_grammar`` (the rows' masks filled on several threads, none on the closing path) is a speed-up
    only: the same seed writes the same tokens with it off."""
    from smolsynth.decoding import speedups

    llm = tiny_llm_factory(structured_output={"format": "json", "schema": SCHEMA})
    chats = [[{"role": "user", "content": f"Record {i}"}] for i in range(12)]
    with speedups(parallel_grammar=True):
        on = [o["generations"][0] for o in llm.generate(chats, max_new_tokens=40, temperature=1.0)]
    with speedups(parallel_grammar=False):
        off = [o["generations"][0] for o in llm.generate(chats, max_new_tokens=40, temperature=1.0)]
    assert on == off and len(set(on)) > 1
    for text in on:
        jsonschema.validate(json.loads(text), SCHEMA)
