"""The one way to answer instructions: distilabel's ``TextGeneration`` on a local model, run in this process.

    >>> import smolsynth
    >>> result = smolsynth.generate(["Name a colour.", "Name a fruit."], model="smolsynth/tiny",
    ...                             max_new_tokens=16)  # doctest: +SKIP
    >>> result.dataset["generation"]  # doctest: +SKIP

It takes a list of instructions, or rows (a Dataset, a list of dicts, an earlier step's result) whose other columns
it keeps, and writes each answer to ``generation`` (distilabel's name, the vocabulary of :mod:`smolsynth.formats`).
Under the hood it builds the same distilabel objects you build yourself in later lessons::

    from distilabel.steps.tasks import TextGeneration
    from smolsynth.llm import LocalLLM
    from smolsynth.runner import run

    llm = LocalLLM(model, generation_kwargs={"max_new_tokens": 128, "temperature": 0.7})
    task = TextGeneration(llm=llm, system_prompt=system_prompt)
    result = run(task, [{"instruction": text} for text in instructions])
"""

from __future__ import annotations

import inspect
from typing import Any, List, Optional, Union

from smolsynth.arguments import check_number, check_text
from smolsynth.formats import INSTRUCTION
from smolsynth.rows import Result, Row, as_rows

# LocalLLM's own settings; every other keyword is a generation setting (see LocalLLM.generate).
_LLM_FIELDS = ("dtype", "device", "seed", "structured_output", "chat_template")
_RUN_FIELDS = ("batch_size", "cache", "force", "desc", "progress", "keep_metadata", "cache_dir", "on_error",
               "allow_truncated")


def instruction_rows(data: Any, column: str = INSTRUCTION, *, argument: str = "instructions") -> List[Row]:
    """``data`` as rows with a text in ``column``: from one string, a list of strings, or rows / a Dataset.

    Raises, naming ``argument``, when ``data`` is empty or a row has no text in ``column``.

    >>> instruction_rows(["Hi", "Bye"])
    [{'instruction': 'Hi'}, {'instruction': 'Bye'}]
    """
    if isinstance(data, str):
        data = [data]
    items = list(data) if isinstance(data, (list, tuple)) else None
    if items is not None and items and all(isinstance(i, str) for i in items):
        rows = [{column: text} for text in items]
    else:
        rows = as_rows(data, argument=argument)
    if not rows:
        raise ValueError(f"{argument} is empty: pass at least one instruction, e.g. ['Explain recursion.'].")
    for i, row in enumerate(rows):
        if column not in row:
            raise ValueError(f"{argument}[{i}] has no {column!r} column (columns: {sorted(row)}); pass a list of "
                             f"strings, or rows with an {column!r}" + (" (or column= to name yours)."
                                                                        if column == INSTRUCTION else "."))
        if not isinstance(row[column], str) or not row[column].strip():
            raise ValueError(f"{argument}[{i}] is {row[column]!r}: every instruction must be a non-empty string.")
    return rows


def llm_for(model: Optional[str], llm: Any = None, *, seed: int = 0, **generation_kwargs: Any) -> Any:
    """``llm`` when given (used as it is), else a :class:`~smolsynth.llm.LocalLLM` on ``model`` with these
    generation settings: how every method lets a caller bring their own LLM.

    >>> llm_for("smolsynth/tiny", max_new_tokens=8).generation_kwargs
    {'max_new_tokens': 8}
    """
    if llm is not None:
        return llm
    from smolsynth.llm import LocalLLM

    return LocalLLM(model, seed=seed, generation_kwargs=generation_kwargs)


def generate(
    instructions: Any,
    *,
    column: str = INSTRUCTION,
    model: Optional[str] = None,
    llm: Any = None,
    system_prompt: Optional[str] = None,
    max_new_tokens: int = 256,
    temperature: float = 0.7,
    num_generations: int = 1,
    **kwargs: Any,
) -> Result:
    """Answer each instruction with distilabel's ``TextGeneration`` and a local model.

    Args:
        instructions: one instruction, a list of them, or rows / a Dataset with the instructions in ``column``
            (other columns are kept; a ``system_prompt`` column is used per row).
        model: a hub id, a folder or ``"smolsynth/tiny"``; default ``$SMOLSYNTH_MODEL`` or the hardware profile's.
        llm: an LLM to use as it is instead (then ``model`` and the generation settings are not used).
        system_prompt: a system prompt for every instruction.
        max_new_tokens: token budget per answer; an answer that runs out of it is dropped as ``truncated`` unless
            ``allow_truncated=True``.
        temperature: 0 for greedy decoding.
        num_generations: answers per instruction (one row each).
        **kwargs: LocalLLM settings (``dtype``, ``device``, ``seed``, ``structured_output``, ...), run settings
            (``batch_size``: rows per batch, ``cache``, ``force``, ``desc``, ``progress``, ``allow_truncated``, ...)
            or generation settings (``top_p``, ``stop``, ...).

    Returns:
        A :class:`~smolsynth.rows.Result`: rows with the input columns, ``generation`` and ``model_name``.
    """
    from smolsynth.llm import LocalLLM
    from smolsynth.runner import run
    from smolsynth.verbosity import import_distilabel, quiet_distilabel

    rows = instruction_rows(instructions, column)
    check_number("max_new_tokens", max_new_tokens, minimum=1, integer=True)
    check_number("temperature", temperature, minimum=0.0, maximum=5.0)
    check_number("num_generations", num_generations, minimum=1, integer=True)
    if system_prompt is not None:
        check_text("system_prompt", system_prompt)
    if "top_p" in kwargs:
        check_number("top_p", kwargs["top_p"], minimum=0.0, maximum=1.0, exclusive_minimum=True)
    llm_kwargs = {k: kwargs.pop(k) for k in _LLM_FIELDS if k in kwargs}
    run_kwargs = {k: kwargs.pop(k) for k in _RUN_FIELDS if k in kwargs}
    allowed = set(inspect.signature(LocalLLM.generate).parameters) - {"self", "inputs", "num_generations"}
    unknown = sorted(set(kwargs) - allowed)
    if unknown:
        raise TypeError(f"generate() got unknown settings {unknown}; LocalLLM settings: {list(_LLM_FIELDS)}, run "
                        f"settings: {list(_RUN_FIELDS)}, generation settings: {sorted(allowed)}.")
    if llm is None:
        llm = LocalLLM(model, generation_kwargs={"max_new_tokens": max_new_tokens, "temperature": temperature,
                                                 **kwargs}, **llm_kwargs)
    elif kwargs or llm_kwargs:
        raise TypeError(f"generate(llm=...) uses the LLM as it is: drop {sorted({**kwargs, **llm_kwargs})}, or "
                        "set them on the LLM.")
    tasks = import_distilabel("distilabel.steps.tasks")
    with quiet_distilabel():
        task = tasks.TextGeneration(llm=llm, system_prompt=system_prompt, num_generations=num_generations,
                                    input_mappings={INSTRUCTION: column} if column != INSTRUCTION else {})
    run_kwargs.setdefault("desc", "generate")
    return run(task, rows, **run_kwargs)


__all__ = ["generate", "instruction_rows", "llm_for"]
