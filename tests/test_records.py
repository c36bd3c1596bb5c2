"""Structured records (smolsynth.records) and tagged runs (smolsynth.runs): the schema is checked first, every record
is validated, an invalid one is counted and never saved, and removing a run removes exactly its rows."""

from __future__ import annotations

import copy
import doctest
import json

import jsonschema
import pytest

import smolsynth.records
import smolsynth.runs
from smolsynth.records import TOOL_CALL_SCHEMA, TOOL_CALL_TASK, check_schema, generate_records, validate_records
from smolsynth.runs import RunDataset
from smolsynth.topics import TopicTree, leaf_prompts

VALID = {"request": "Is it raining in Oslo?",
         "call": {"name": "get_weather", "arguments": {"city": "Oslo", "unit": "celsius"}}}


@pytest.mark.parametrize("module", [smolsynth.records, smolsynth.runs])
def test_doctests(module) -> None:
    result = doctest.testmod(module)
    assert result.failed == 0 and result.attempted > 0


def test_check_schema_refuses_what_is_not_a_record_schema() -> None:
    assert check_schema(TOOL_CALL_SCHEMA) is TOOL_CALL_SCHEMA
    with pytest.raises(ValueError, match="not a valid JSON Schema.*properties/n/type"):
        check_schema({"type": "object", "properties": {"n": {"type": "integr"}}})
    with pytest.raises(ValueError, match='"type": "object"'):
        check_schema({"type": "string"})
    with pytest.raises(TypeError, match="as a dict"):
        check_schema('{"type": "object"}')


def test_validate_records_keeps_valid_and_counts_the_others_with_the_error() -> None:
    bad_unit = copy.deepcopy(VALID)
    bad_unit["call"]["arguments"]["unit"] = "kelvin"
    too_long = {**VALID, "request": "Is it " + "very " * 40 + "cold?"}
    rows = [{"record": VALID}, {"record": json.dumps(VALID)}, {"record": bad_unit}, {"record": too_long},
            {"record": "{not json"}]
    result = validate_records(rows, TOOL_CALL_SCHEMA)
    assert [r["record"] for r in result.rows] == [VALID, VALID]  # the JSON string is parsed into a dict
    assert result.report.dropped == {"schema_invalid": 2, "unparsed_output": 1}
    errors = [r["error"] for r in result.dropped_rows]
    assert errors[0].startswith("at call/arguments/unit: 'kelvin' is not one of")
    assert errors[1].startswith("at request:") and "is too long" in errors[1]
    assert errors[2].startswith("not JSON")


def test_generated_records_all_validate_and_a_planted_invalid_one_is_counted() -> None:
    tree = TopicTree("Weather").add("Rain").add("Snow")
    result = generate_records(leaf_prompts(tree, TOOL_CALL_TASK), TOOL_CALL_SCHEMA, model="smolsynth/tiny",
                              num_generations=2, max_new_tokens=96, progress=False, cache=False,
                              allow_truncated=True)
    assert [s.step for s in result.steps][-1] == "validate_records"
    assert result.report.rows_out + sum(result.report.dropped.values()) == 4  # 2 leaves x 2 generations
    validator = jsonschema.Draft202012Validator(TOOL_CALL_SCHEMA)
    assert all(validator.is_valid(r["record"]) for r in result.rows)
    assert all(r["topic_path"].startswith("Weather > ") for r in result.rows + result.dropped_rows)
    planted = {"topic_path": "planted", "record": {**VALID, "call": {**VALID["call"], "name": "get_time"}}}
    checked = validate_records(result.rows + [planted], TOOL_CALL_SCHEMA)
    assert checked.report.dropped == {"schema_invalid": 1} and checked.dropped_rows[0]["topic_path"] == "planted"
    assert len(checked.rows) == len(result.rows)


def test_generate_records_checks_the_schema_before_loading_a_model() -> None:
    with pytest.raises(ValueError, match="not a valid JSON Schema"):
        generate_records([{"instruction": "x"}], {"type": "object", "required": "city"}, model="no/such-model")


def test_remove_takes_out_exactly_one_runs_rows(tmp_path) -> None:
    data = RunDataset(tmp_path / "d")
    first = data.append([{"generation": f"a{i}"} for i in range(3)])
    second = data.append([{"generation": f"b{i}"} for i in range(2)], tag="guided", note="with guidance")
    third = data.append([{"generation": "c0"}])
    assert (first, second, third) == ("synthetic_run_1", "guided", "synthetic_run_2")
    before = {r["id"]: r for r in data.rows()}
    assert data.remove("guided") == 2
    after = RunDataset(tmp_path / "d")  # what is on disk
    assert after.run_ids() == ["synthetic_run_1", "synthetic_run_2"]
    assert {r["id"]: r for r in after.rows()} == {k: v for k, v in before.items() if v["run_id"] != "guided"}
    assert after.runs()["rows"].tolist() == [3, 1]
    with pytest.raises(KeyError, match="not a run"):
        after.remove("guided")


def test_runs_record_guidance_dropped_counts_and_refuse_a_tag_twice(tmp_path) -> None:
    from smolsynth.report import Report
    from smolsynth.rows import Result

    data = RunDataset(tmp_path)
    result = Result([{"generation": "Hi?", "guidance": "Ask."}], [{"generation": None, "reason": "truncated"}],
                    Report("generate", 2, 1, {"truncated": 1}, model="m"))
    data.append(result, tag="r")
    line = data.runs().iloc[0].to_dict()
    assert (line["rows"], line["dropped"], line["guidance"], line["model"]) == (1, 1, "Ask.", "m")
    with pytest.raises(ValueError, match="already"):
        data.append(result, tag="r")
    with pytest.raises(ValueError, match="no rows"):
        data.append([], tag="empty")


def test_a_schema_dataset_refuses_a_run_with_an_invalid_record_and_writes_nothing(tmp_path) -> None:
    data = RunDataset(tmp_path, schema=TOOL_CALL_SCHEMA)
    data.append([{"record": VALID}], tag="good")
    with pytest.raises(ValueError, match="do not validate.*Nothing was written"):
        data.append([{"record": VALID}, {"record": {**VALID, "request": 3}}], tag="bad")
    assert data.run_ids() == ["good"] and len(data) == 1
    lines = (tmp_path / "rows.jsonl").read_text().splitlines()
    assert len(lines) == 1 and jsonschema.Draft202012Validator(TOOL_CALL_SCHEMA).is_valid(json.loads(lines[0])["record"])
    with pytest.raises(ValueError, match="another schema"):
        RunDataset(tmp_path, schema={"type": "object"})
    assert RunDataset(tmp_path).schema == TOOL_CALL_SCHEMA  # reopened without one: the saved schema holds


def test_split_is_stable_as_runs_are_added(tmp_path) -> None:
    data = RunDataset(tmp_path)
    data.append([{"generation": f"text {i}"} for i in range(40)])
    _, test_before = data.split(test_fraction=0.25)
    data.append([{"generation": f"more {i}"} for i in range(40)])
    _, test_after = data.split(test_fraction=0.25)
    before = {r["id"] for r in test_before}
    assert before and before <= {r["id"] for r in test_after}
    assert 5 <= len(test_after) <= 35
