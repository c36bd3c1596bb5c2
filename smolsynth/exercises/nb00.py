"""Exercises of notebook 00, "Setup and first generation".

``q1`` 🐢 asks for a first small dataset made with ``smolsynth.generation.generate``; ``q2`` 🐕 asks for the same
call one layer down, as a distilabel ``TextGeneration`` task with a system prompt, run by ``smolsynth.runner.run``.
Both checks judge structure (types, columns, counts, where each row came from), never the wording of a generation,
so they hold for the tiny offline model in CI and for a real model on a learner's machine.

    >>> from smolsynth.exercises import ____, nb00
    >>> nb00.q1.evaluate(my_instructions=____, my_result=____).status
    'not_attempted'
    >>> nb00.q1.evaluate(my_instructions=["Hi"], my_result=None).message
    '`my_instructions` has 1 instruction; the exercise asks for at least 3, so that your dataset has some variety.'
"""

from __future__ import annotations

from typing import Any

from smolsynth.exercises.core import Exercise, Level, dataset_of, dropped_count, expect

NOTEBOOK = "00_setup"


class FirstDataset(Exercise):
    notebook = NOTEBOOK
    name = "q1"
    title = "Your first generated dataset"
    level = Level.DEFAULT
    variables = ("my_instructions", "my_result")
    hints = (
        "`my_instructions` is a plain Python list of strings, e.g. `[\"Explain ...\", \"Give ...\", \"Write ...\"]`, "
        "with at least three different instructions.",
        "`my_result` comes from the same function as the first generation above: `generate(my_instructions, ...)`.",
        "Keep the answers short while you experiment: pass `max_new_tokens=MAX_NEW_TOKENS` to `generate`.",
    )

    def _check(self, my_instructions: Any, my_result: Any) -> str:
        expect(isinstance(my_instructions, (list, tuple)),
               f"`my_instructions` should be a list of strings, one instruction each; it is a "
               f"{type(my_instructions).__name__}.")
        expect(all(isinstance(i, str) for i in my_instructions),
               "Every item of `my_instructions` should be a string (the text of one instruction).")
        n = len(my_instructions)
        expect(n >= 3, f"`my_instructions` has {n} instruction{'s' if n != 1 else ''}; the exercise asks for at "
                       "least 3, so that your dataset has some variety.")
        expect(all(i.strip() for i in my_instructions),
               "One of your instructions is empty (or only spaces): the model would have nothing to answer.")
        expect(len({i.strip().lower() for i in my_instructions}) == n,
               "Two of your instructions are the same: repeated rows teach a model nothing new. Make each one "
               "different.")
        dataset = dataset_of(my_result, "my_result", "generate(...)")
        missing = {"instruction", "generation"} - set(dataset.column_names)
        expect(not missing, f"`my_result` has no {' or '.join(sorted(missing))} column: make it with "
                            "`generate(my_instructions, ...)`, which returns both.")
        rows = dataset["instruction"]
        expect(set(rows) <= set(my_instructions),
               "`my_result` holds answers to instructions that are not in `my_instructions`: did you generate "
               "from another list? Run `generate` on `my_instructions` again.")
        dropped = dropped_count(my_result)
        expect(len(rows) + dropped == n,
               f"`my_result` accounts for {len(rows) + dropped} instruction(s) (rows plus dropped ones), but "
               f"`my_instructions` has {n}: generate from the whole list, once.")
        expect(all(isinstance(g, str) for g in dataset["generation"]),
               "Some rows of `my_result` have no generated text: look at `my_result.report` to see why.")
        return (f"{n} instructions in, {len(rows)} answers out"
                + (f" ({dropped} dropped, with reasons in `my_result.report`)" if dropped else "")
                + ". That is a synthetic dataset: small, but the same shape as the big ones.")


class TaskWithSystemPrompt(Exercise):
    notebook = NOTEBOOK
    name = "q2"
    title = "The same call, one layer down: a system prompt"
    level = Level.VARIANT
    variables = ("my_task", "my_task_result")
    hints = (
        "Start from the distilabel cell above: `TextGeneration(llm=llm, system_prompt=...)` builds the task; the "
        "system prompt is a string that tells the model how to behave (e.g. \"Answer like a patient teacher.\").",
        "`my_task_result` is what `run(my_task, rows)` returns, where `rows` is a list of dicts with an "
        "`instruction` key (at least two of them), e.g. `[{\"instruction\": i} for i in my_instructions]`.",
        "Check what the model will really see: `my_task.format_input({\"instruction\": \"Hi\"})` should start with a "
        "message whose role is `system`.",
    )

    def _check(self, my_task: Any, my_task_result: Any) -> str:
        tasks = _distilabel_tasks()
        expect(isinstance(my_task, tasks.TextGeneration),
               f"`my_task` should be a distilabel `TextGeneration` task; it is a {type(my_task).__name__}.")
        prompt = my_task.system_prompt
        expect(isinstance(prompt, str) and prompt.strip(),
               "`my_task` has no system prompt: pass `system_prompt=\"...\"` to `TextGeneration`. It is the "
               "variant this exercise is about: one sentence that steers every answer.")
        expect(type(my_task.llm).__module__.startswith("smolsynth"),
               f"`my_task` runs on a {type(my_task.llm).__name__}; give it smolsynth's local LLM (`llm=llm` from the "
               "cell above), which batches and works offline.")
        if getattr(my_task, "_template", None) is None:  # distilabel builds the prompt template in load()
            my_task.load()  # cheap: the model is already in memory after the run
        messages = my_task.format_input({"instruction": "Hi"})
        expect(messages[0].get("role") == "system" and messages[0].get("content") == prompt,
               "The prompt `my_task` builds does not start with your system prompt: build the task with "
               "`system_prompt=` rather than adding it to the instruction text.")
        dataset = dataset_of(my_task_result, "my_task_result", "run(my_task, rows)")
        expect("generation" in dataset.column_names,
               "`my_task_result` has no `generation` column: make it with `run(my_task, rows)`.")
        if "model_name" in dataset.column_names:
            expect(set(dataset["model_name"]) <= {my_task.llm.model_name},
                   "`my_task_result` was made by another model than `my_task`'s: run `my_task` itself.")
        total = len(dataset) + dropped_count(my_task_result)
        expect(total >= 2, f"`my_task_result` covers {total} instruction(s); run the task on at least two.")
        expect(all(isinstance(g, str) for g in dataset["generation"]),
               "Some rows of `my_task_result` have no generated text: look at its `.report` to see why.")
        return (f"{len(dataset)} answers, each produced from a prompt that starts with your system prompt. "
                "That is exactly what `generate(..., system_prompt=...)` does for you.")


def _distilabel_tasks() -> Any:
    from smolsynth.verbosity import import_distilabel

    return import_distilabel("distilabel.steps.tasks")


q1 = FirstDataset()
q2 = TaskWithSystemPrompt()
EXERCISES = (q1, q2)
