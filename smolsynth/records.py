"""Structured records: data that follows a JSON Schema the learner defines (notebook 06).

Two safeguards, both needed::

    generate_records(rows, schema)   the engine constrains every token to the schema (smolsynth.grammar: xgrammar),
       │                             so the output parses, with the fields in place;
       └─► validate_records(...)     then ``jsonschema`` checks every record against the *whole* schema. A grammar
                                     does not enforce everything a schema says (xgrammar 0.2.8 ignores
                                     ``minLength``/``maxLength`` beside a ``pattern``, ``format``, ``uniqueItems``;
                                     a server's "JSON mode" may enforce nothing). A record that fails is dropped as
                                     ``schema_invalid`` with the validator's message in ``error``: never saved.
    RunDataset(folder, schema=...)   (smolsynth.runs) saves them, validating once more on the way in: a run with an
                                     invalid record is refused whole.

:data:`TOOL_CALL_SCHEMA` is the shape of a function-calling dataset: a user's request and the call that serves it
(function name + arguments).

    >>> result = validate_records([{"record": {"name": "get_weather", "arguments": {"city": "Oslo"}}}],
    ...                           TOOL_CALL_SCHEMA["properties"]["call"])
    >>> result.report.dropped, result.dropped_rows[0]["error"]
    ({'schema_invalid': 1}, "at arguments: 'unit' is a required property")
"""

from __future__ import annotations

import json
from typing import Any, Dict, Optional

from smolsynth.arguments import check_number
from smolsynth.rows import Result, Row, as_rows, chain, partition

__all__ = ["RECORD", "TOOL_CALL_SCHEMA", "TOOL_CALL_TASK", "TOOLS", "check_schema", "generate_records",
           "validate_records"]

RECORD = "record"
"""The column that holds a structured record (a dict)."""

TOOLS = {
    "get_weather": "the current weather in a city (arguments: city, unit)",
    "convert_currency": "an amount of money in another currency (arguments: amount, from_currency, to_currency)",
    "set_reminder": "a reminder at a time of day (arguments: text, time)",
}
"""The functions the course's tool-call dataset calls, with what they do (shown to the model in the prompt)."""

TOOL_CALL_SCHEMA: Dict[str, Any] = {
    "type": "object",
    "required": ["request", "call"],
    "properties": {
        # words and single spaces, ending with "?" or ".": no code-like strings ("get-weather-cities"). The grammar
        # does not hold maxLength beside a pattern (xgrammar 0.2.8); the validation does.
        "request": {"type": "string", "maxLength": 120, "pattern": r"^[A-Z][a-z']*(?: [A-Za-z0-9',]+)+[?.]$"},
        "call": {
            "type": "object",
            "required": ["name", "arguments"],
            "properties": {
                "name": {"const": "get_weather"},
                "arguments": {
                    "type": "object",
                    "required": ["city", "unit"],
                    "properties": {"city": {"type": "string", "pattern": r"^[A-Z][a-z]+(?: [A-Z][a-z]+){0,2}$"},
                                   "unit": {"enum": ["celsius", "fahrenheit"]}},
                    "additionalProperties": False,
                },
            },
            "additionalProperties": False,
        },
    },
    "additionalProperties": False,
}
"""A tool-call record: the user's ``request`` and the ``call`` that serves it (``get_weather`` with a ``city`` and a
``unit``). Notebook 06 asks the learner to write the schema of another of :data:`TOOLS`."""

TOOL_CALL_TASK = ("Write a question a traveller asks an assistant about the weather in {topic}, and the call the "
                  'assistant makes: get_weather(city, unit) with unit "celsius" or "fahrenheit". Answer in JSON with '
                  '"request" and "call".')
"""The per-leaf prompt for :data:`TOOL_CALL_SCHEMA`, for a tree whose leaves are cities
(:func:`smolsynth.topics.leaf_prompts`). No worked example: with one, SmolLM2-135M-Instruct copied it into all 9
records; with the city left to the model ("naming a city"), it wrote "Cities" or the guidance (measured, 2026-12-04)."""


def check_schema(schema: Any, *, argument: str = "schema") -> Dict[str, Any]:
    """``schema`` must be a valid JSON Schema (Draft 2020-12) describing an object; returns it.

    >>> check_schema({"type": "object", "properties": {"n": {"type": "integr"}}})
    Traceback (most recent call last):
    ...
    ValueError: schema is not a valid JSON Schema: 'integr' is not valid under any of the given schemas (at properties/n/type). Fix it, e.g. {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}.
    """
    import jsonschema

    if not isinstance(schema, dict):
        raise TypeError(f"{argument} is a {type(schema).__name__}: pass a JSON Schema as a dict, e.g. "
                        '{"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}.')
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as err:
        where = "/".join(map(str, err.absolute_path)) or "the top"
        raise ValueError(f"{argument} is not a valid JSON Schema: {err.message} (at {where}). Fix it, e.g. "
                         '{"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}.'
                         ) from None
    if schema.get("type") != "object":
        raise ValueError(f'{argument} describes {schema.get("type")!r}, not a record: give it "type": "object" '
                         "and the record's fields under \"properties\".")
    return schema


def _first_error(validator: Any, record: Any) -> Optional[str]:
    errors = sorted(validator.iter_errors(record), key=lambda e: list(e.absolute_path))
    if not errors:
        return None
    where = "/".join(map(str, errors[0].absolute_path))
    return f"at {where}: {errors[0].message}" if where else errors[0].message


def validate_records(data: Any, schema: Dict[str, Any], *, column: str = RECORD) -> Result:
    """Check every row's ``column`` (a dict, or a JSON string) against ``schema`` with ``jsonschema``.

    Returns:
        A :class:`~smolsynth.rows.Result`: rows whose record validates (the record as a dict), and the others
        dropped as ``unparsed_output`` (not JSON) or ``schema_invalid``, each with the validator's ``error``.
    """
    import jsonschema

    check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    rows = as_rows(data)

    def check(row: Row):
        value = row.get(column)
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError as err:
                return "unparsed_output", {**row, "error": f"not JSON: {err}"}
        error = _first_error(validator, value)
        if error:
            return "schema_invalid", {**row, "error": error}
        return None, {**row, column: value}

    return partition(rows, check, step="validate_records")


def generate_records(data: Any, schema: Dict[str, Any], *, column: str = "instruction", model: Optional[str] = None,
                     llm: Any = None, max_new_tokens: int = 160, temperature: float = 0.7, num_generations: int = 1,
                     seed: int = 0, **kwargs: Any) -> Result:
    """Write one record per prompt (``num_generations`` per prompt), constrained to ``schema``, then validate each
    with :func:`validate_records`.

    Args:
        data: rows with a prompt in ``column`` (e.g. :func:`smolsynth.topics.leaf_prompts`); their other columns
            (``topic_path``, ``guidance``, ...) are kept.
        schema: the JSON Schema of a record (an object); checked before any model is loaded.
        model, max_new_tokens, temperature, seed, **kwargs: as :func:`smolsynth.generation.generate`.
        llm: an LLM to use instead of ``model`` (a :class:`~smolsynth.servers.ServerLLM`, say), with its own
            generation settings; it is given ``schema`` as its structured output.

    Returns:
        A :class:`~smolsynth.rows.Result` whose rows have ``record`` (a dict that validates) and ``model_name``;
        its ``.steps`` are the generation's and the validation's reports, and its dropped rows say why
        (``schema_invalid`` with ``error``, ``truncated``, ...).
    """
    from smolsynth.generation import generate

    check_schema(schema)
    check_number("max_new_tokens", max_new_tokens, minimum=16, integer=True)
    rows = as_rows(data)
    spec = {"format": "json", "schema": schema}
    if llm is not None:  # used as it is, given the schema (a copy: the caller's LLM is left unchanged)
        llm = llm.model_copy(update={"structured_output": spec})
        generated = generate(rows, column=column, llm=llm, num_generations=num_generations, **kwargs)
    else:
        generated = generate(rows, column=column, model=model, max_new_tokens=max_new_tokens,
                             temperature=temperature, num_generations=num_generations, seed=seed,
                             structured_output=spec, **kwargs)
    moved = [{**{k: v for k, v in r.items() if k != "generation"}, RECORD: r["generation"]} for r in generated.rows]
    validated = validate_records(moved, schema)
    result = chain("generate_records", [generated, validated])
    result.params.update(schema=schema, seed=seed)
    return result
