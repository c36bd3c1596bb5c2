"""The simplest first call: answer some instructions with a local model, the distilabel way, in one line.

    >>> import smolsynth
    >>> result = smolsynth.generate(["Name a colour.", "Name a fruit."], model="smolsynth/tiny",
    ...                             max_new_tokens=16)  # doctest: +SKIP
    >>> result.dataset["generation"]  # doctest: +SKIP

Under the hood it builds the same distilabel objects you will build yourself in later lessons::

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

from smolsynth.runner import RunResult

# LocalLLM's own settings; every other keyword is a generation setting (see LocalLLM.generate).
_LLM_FIELDS = ("dtype", "device", "batch_size", "seed", "structured_output", "engine", "chat_template")
_RUN_FIELDS = ("cache", "force", "desc", "progress", "keep_metadata", "cache_dir", "on_error")


def generate(
    instructions: Union[str, List[str]],
    *,
    model: Optional[str] = None,
    system_prompt: Optional[str] = None,
    max_new_tokens: int = 128,
    temperature: float = 0.7,
    num_generations: int = 1,
    **kwargs: Any,
) -> RunResult:
    """Generate a response to each instruction with distilabel's ``TextGeneration`` and a local model.

    Args:
        instructions: one instruction or a list of them.
        model: a hub id, a folder or ``"smolsynth/tiny"``; default ``$SMOLSYNTH_MODEL`` or the hardware profile's.
        system_prompt: a system prompt for every instruction.
        max_new_tokens: token budget per response.
        temperature: 0 for greedy decoding.
        num_generations: responses per instruction.
        **kwargs: LocalLLM settings (``dtype``, ``device``, ``batch_size``, ``seed``, ``structured_output``, ...),
            run settings (``cache``, ``force``, ``desc``, ``progress``, ...) or generation settings (``top_p``,
            ``stop``, ...).

    Returns:
        A :class:`~smolsynth.runner.RunResult`: ``.dataset`` has ``instruction``, ``generation`` and
        ``model_name``; ``.report`` counts rows, tokens and time.

    The distilabel objects it builds::

        llm = LocalLLM(model, generation_kwargs={"max_new_tokens": max_new_tokens, "temperature": temperature})
        task = TextGeneration(llm=llm, system_prompt=system_prompt, num_generations=num_generations)
        run(task, [{"instruction": text} for text in instructions])
    """
    from smolsynth.llm import LocalLLM
    from smolsynth.runner import quiet_distilabel, run
    from smolsynth.verbosity import import_distilabel

    if isinstance(instructions, str):
        instructions = [instructions]
    instructions = list(instructions)
    for i, text in enumerate(instructions):
        if not isinstance(text, str):
            raise TypeError(f"instructions[{i}] is a {type(text).__name__}: pass strings, e.g. "
                            "generate(['Write a haiku about tea.']).")
    llm_kwargs = {k: kwargs.pop(k) for k in _LLM_FIELDS if k in kwargs}
    run_kwargs = {k: kwargs.pop(k) for k in _RUN_FIELDS if k in kwargs}
    allowed = set(inspect.signature(LocalLLM.generate).parameters) - {"self", "inputs", "num_generations"}
    unknown = sorted(set(kwargs) - allowed)
    if unknown:
        raise TypeError(f"generate() got unknown settings {unknown}; LocalLLM settings: {list(_LLM_FIELDS)}, run "
                        f"settings: {list(_RUN_FIELDS)}, generation settings: {sorted(allowed)}.")
    tasks = import_distilabel("distilabel.steps.tasks")
    llm = LocalLLM(model, generation_kwargs={"max_new_tokens": max_new_tokens, "temperature": temperature, **kwargs},
                   **llm_kwargs)
    with quiet_distilabel():
        task = tasks.TextGeneration(llm=llm, system_prompt=system_prompt, num_generations=num_generations)
    run_kwargs.setdefault("desc", "generate")
    return run(task, [{"instruction": text} for text in instructions], **run_kwargs)


__all__ = ["generate"]
