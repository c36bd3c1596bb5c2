"""Instruction datasets, and their hand-off to TRL's SFTTrainer.

:func:`to_sft` turns rows with an instruction and a response into the conversational format TRL reads as is: a
dataset with only a ``messages`` column (DESIGN.md D6: never a string ``prompt`` beside ``messages``, which makes
TRL's format detection depend on the hash seed)::

    >>> result = to_sft([{"instruction": "Say hi", "generation": "Hi!"}, {"instruction": "Oops", "generation": None}])
    >>> result.dataset[0]["messages"]
    [{'role': 'user', 'content': 'Say hi'}, {'role': 'assistant', 'content': 'Hi!'}]
    >>> result.report.dropped
    {'missing_response': 1}
"""

from __future__ import annotations

import time
from typing import Any

from smolsynth.report import Report
from smolsynth.runner import RunResult, _rows, _to_dataset


def to_sft(data: Any, *, instruction_column: str = "instruction", response_column: str = "generation",
           system_column: str | None = None) -> RunResult:
    """Convert instruction/response rows to an SFT dataset with a single ``messages`` column.

    Rows whose instruction or response is missing or blank are set aside with a reason (``missing_instruction``,
    ``missing_response``), never turned into empty turns. Returns a :class:`~smolsynth.runner.RunResult`.
    """
    started = time.perf_counter()
    rows = _rows(data)
    if rows:
        for column in filter(None, (instruction_column, response_column, system_column)):
            if column not in rows[0]:
                raise ValueError(f"Column {column!r} is not in the data (columns: {sorted(rows[0])}); pass "
                                 f"instruction_column=/response_column=/system_column= to name yours.")
    kept: list[dict[str, Any]] = []
    dropped: list[dict[str, Any]] = []
    for row in rows:
        instruction, response = row.get(instruction_column), row.get(response_column)
        if not isinstance(instruction, str) or not instruction.strip():
            dropped.append({**row, "reason": "missing_instruction"})
            continue
        if not isinstance(response, str) or not response.strip():
            dropped.append({**row, "reason": "missing_response"})
            continue
        system = row.get(system_column) if system_column else None
        messages = [{"role": "system", "content": system}] if system else []
        messages += [{"role": "user", "content": instruction}, {"role": "assistant", "content": response}]
        kept.append({"messages": messages})
    reasons: dict[str, int] = {}
    for row in dropped:
        reasons[row["reason"]] = reasons.get(row["reason"], 0) + 1
    report = Report("to_sft", rows_in=len(rows), rows_out=len(kept), dropped=reasons,
                    seconds=time.perf_counter() - started)
    return RunResult(dataset=_to_dataset(kept), dropped=_to_dataset(dropped), report=report)
