"""Exercises of notebook 08, "Beyond the notebook".

``q1`` 🐢 the learner writes a recipe, loaded as ``smolsynth run`` loads it; ``q2`` 🐕 sends instructions of their
own to the running server through a ``ServerLLM``; ``q3`` 🐕 builds and runs a distilabel pipeline of their own
(answers, then a judge); ``q4`` 🦁 runs a recipe of their own use case and reads its dataset card. The checks
recompute what they judge (the loaded recipe, the result's model and accounting, the pipeline's steps and the rows
against them, the run folder's record and the card made from it), so they hold for the tiny model and a real one.

    >>> from smolsynth.exercises import ____, nb08
    >>> nb08.q1.evaluate(my_recipe=____).status
    'not_attempted'
    >>> print(nb08.q1.evaluate(my_recipe={"step": [{"kind": "answers"}]}).message)
    The recipe does not load: step 1: a 'answers' step reads the rows of a step before it; start with one of magpie, texts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from smolsynth.exercises.core import Exercise, Incorrect, Level, expect

NOTEBOOK = "08_beyond"
MIN_ROWS = 4
MIN_ANSWERS = 3


def _loaded(recipe: Any, name: str) -> dict:
    from smolsynth.recipes import load_recipe

    expect(isinstance(recipe, (dict, str, Path)), f"`{name}` is a {type(recipe).__name__}; it should be a recipe: "
                                                  "a dict with a list of steps, TOML text, or a .toml file's path.")
    if isinstance(recipe, str) and "[[step]]" in recipe:
        import sys

        tomllib = __import__("tomllib" if sys.version_info >= (3, 11) else "tomli")
        try:
            recipe = tomllib.loads(recipe)
        except tomllib.TOMLDecodeError as err:
            raise Incorrect(f"`{name}` is not valid TOML: {err}.") from None
    try:
        return load_recipe(recipe)
    except (ValueError, FileNotFoundError, TypeError) as err:
        raise Incorrect(f"The recipe does not load: {err}") from None


class WriteARecipe(Exercise):
    notebook = NOTEBOOK
    name = "q1"
    title = "Write a recipe"
    level = Level.DEFAULT
    variables = ("my_recipe",)
    hints = (
        "A recipe is a dict with a `step` list; each step is a dict with a `kind` and the settings of its function: "
        "`{'kind': 'magpie', 'rows': 4}`.",
        "The answers step takes generate()'s settings: `{'kind': 'answers', 'system_prompt': '...'}`.",
    )

    def _check(self, my_recipe: Any) -> str:
        recipe = _loaded(my_recipe, "my_recipe")
        kinds = [s["kind"] for s in recipe["step"]]
        expect(kinds == ["magpie", "answers"], f"The recipe's steps are {kinds}; make them ['magpie', 'answers']: "
                                               "instructions first, then an answer to each.")
        rows = recipe["step"][0].get("rows", 8)
        expect(isinstance(rows, int) and rows >= MIN_ROWS, f"The magpie step makes {rows!r} rows; ask for at least "
                                                           f"{MIN_ROWS} (`rows = {MIN_ROWS}`).")
        prompt = recipe["step"][1].get("system_prompt")
        expect(isinstance(prompt, str) and prompt.strip(), "The answers step has no `system_prompt`: give the model "
                                                           "a short instruction of your own on how to answer.")
        return (f"The recipe loads as `smolsynth run` loads it: {rows} instructions, each answered under your system "
                "prompt. Save it as TOML and run it from a terminal.")


class AskTheServer(Exercise):
    notebook = NOTEBOOK
    name = "q2"
    title = "Your own requests to the server"
    level = Level.VARIANT
    variables = ("my_llm", "my_answers")
    hints = (
        "`my_llm = server.llm(generation_kwargs={'max_new_tokens': 64, 'temperature': 0.0})`: a ServerLLM on the "
        "running server, with your settings.",
        "`my_answers = generate([...three instructions of yours...], llm=my_llm)`.",
    )

    def _check(self, my_llm: Any, my_answers: Any) -> str:
        from smolsynth.rows import Result
        from smolsynth.servers import ServerLLM

        expect(isinstance(my_llm, ServerLLM), f"`my_llm` is a {type(my_llm).__name__}; it should be a ServerLLM "
                                              "(`server.llm(...)`, or `ServerLLM(base_url=..., model=...)`).")
        expect(isinstance(my_answers, Result), f"`my_answers` is a {type(my_answers).__name__}; it should be what "
                                               "`generate([...], llm=my_llm)` returns.")
        expect(my_answers.report.rows_in >= MIN_ANSWERS, f"`my_answers` answered {my_answers.report.rows_in} "
                                                         f"instruction(s); send at least {MIN_ANSWERS}.")
        expect(my_answers.report.model == my_llm.model_name and my_llm.usage["requests"] >= MIN_ANSWERS,
               "`my_answers` was not made by `my_llm`: pass `llm=my_llm` to `generate`.")
        failed = [r for r in my_answers.dropped_rows if str(r.get("reason", "")).startswith("exception")]
        if failed:
            raise Incorrect(f"{len(failed)} request(s) failed: {failed[0].get('error', '')[:200]} Is the server "
                            "running (`server`)? If you stopped it, start it again: `server = LocalServer(model_id)`.")
        expect(my_answers.rows, "Every answer was dropped (`my_answers.report` says why): give the answers a larger "
                                "token budget.")
        return (f"{len(my_answers.rows)} answer(s) from the server at {my_llm.base_url}, every request accounted for. "
                "The same call runs against vLLM or a hosted provider: only `base_url` and the model change.")


class OwnPipeline(Exercise):
    notebook = NOTEBOOK
    name = "q3"
    title = "A pipeline of your own"
    level = Level.VARIANT
    variables = ("my_pipeline", "my_rated")
    hints = (
        "`build_pipeline(rows, [answer_task, judge_task])`: the rows are `[{'instruction': ...}, ...]`; the answer "
        "task is a `TextGeneration(llm=..., system_prompt=..., num_generations=2, group_generations=True)`.",
        "The judge: `UltraFeedback(llm=judge_llm(2, model=model_id), input_mappings={'generations': 'generation'})`; "
        "then `my_rated = run_pipeline(my_pipeline, use_cache=False)['default']['train'].to_list()`.",
    )

    def _check(self, my_pipeline: Any, my_rated: Any) -> str:
        from smolsynth.pipelines import RunnerStep
        from smolsynth.rows import as_rows
        from smolsynth.verbosity import import_distilabel

        pipelines = import_distilabel("distilabel.pipeline")
        expect(isinstance(my_pipeline, pipelines.base.BasePipeline), f"`my_pipeline` is a "
               f"{type(my_pipeline).__name__}; it should be what `build_pipeline(rows, [answer, rate])` returns.")
        steps = [my_pipeline.dag.get_step(name)["step"] for name in my_pipeline.dag]
        runners = [s.task for s in steps if isinstance(s, RunnerStep)]
        expect(len(runners) == 2, f"`my_pipeline` has {len(runners)} task(s); give `build_pipeline` two: the answers, "
                                  "then the judge.")
        answer, rate = runners
        expect(type(answer).__name__ == "TextGeneration" and type(rate).__name__ == "UltraFeedback",
               f"The tasks are {type(answer).__name__} then {type(rate).__name__}; make them TextGeneration (the "
               "answers), then UltraFeedback (the judge).")
        expect((answer.num_generations or 1) >= 2 and answer.group_generations,
               "The judge compares answers: give TextGeneration `num_generations=2, group_generations=True`, so "
               "that each row has a list of answers.")
        expect(bool(str(answer.system_prompt or "").strip()), "The answer task has no `system_prompt`: give it one "
                                                              "of your own.")
        data = next((getattr(s, "data", None) for s in steps if not isinstance(s, RunnerStep)), None) or []
        instructions = {row.get("instruction") for row in data}
        expect(len(instructions) >= MIN_ANSWERS, f"The pipeline reads {len(instructions)} instruction(s); give it "
                                                 f"at least {MIN_ANSWERS} of your own.")
        if hasattr(my_rated, "keys") and "default" in my_rated:  # the Distiset itself
            my_rated = my_rated["default"]["train"]
        try:
            rows = as_rows(my_rated, argument="my_rated")
        except TypeError as err:
            raise Incorrect(f"{err} (`run_pipeline(my_pipeline, use_cache=False)['default']['train']`)") from None
        expect(rows, "`my_rated` has no rows: every row was set aside. Give the answers a larger token budget.")
        expect(all(row.get("instruction") in instructions for row in rows),
               "`my_rated` holds rows that `my_pipeline` did not read: run `my_pipeline` itself.")
        unrated = [r for r in rows if not isinstance(r.get("ratings"), list)
                   or len(r["ratings"]) != len(r.get("generation") or [])]
        expect(not unrated, f"{len(unrated)} row(s) of `my_rated` lack one rating per answer: put the last step's "
                            "rows in `my_rated` (`distiset['default']['train']`).")
        return (f"{len(rows)} of {len(instructions)} instructions answered twice and rated, each step in its own "
                "process. With `ray=True` the same pipeline runs on a Ray cluster.")


class OwnRun(Exercise):
    notebook = NOTEBOOK
    name = "q4"
    title = "A run of your own, with its card"
    level = Level.OWN
    variables = ("my_run", "my_card")
    hints = (
        "`run_recipe({'name': 'my-data', 'step': [...]}, folder / 'runs' / 'mine')` writes the folder; put that "
        "folder in `my_run`.",
        "`my_card = dataset_card(my_run)`.",
    )

    def _check(self, my_run: Any, my_card: Any) -> str:
        import json

        from smolsynth.cards import dataset_card
        from smolsynth.recipes import RECIPES, load_recipe

        expect(isinstance(my_run, (str, Path)) and (Path(my_run) / "run.json").is_file(),
               f"`my_run` is {my_run!r:.80}; it should be the folder `run_recipe(...)` wrote (it holds run.json).")
        record = json.loads((Path(my_run) / "run.json").read_text(encoding="utf-8"))
        expect("finished" in record, "The run in `my_run` has not finished: run `run_recipe(...)` on it again, it "
                                     "resumes.")
        steps = record.get("steps", [])
        expect(len(steps) >= 2, f"The run has {len(steps)} step(s); give your recipe at least two (e.g. magpie, "
                                "then answers).")
        ran = load_recipe(Path(my_run) / "recipe.toml")
        for shipped in RECIPES.glob("*.toml"):
            expect(load_recipe(shipped)["step"] != ran["step"], f"Your recipe is the shipped `{shipped.stem}` recipe "
                                                                "as it is: write one for your own use case.")
        expect(isinstance(my_card, str) and my_card.startswith("---"), "`my_card` should be the text "
                                                                       "`dataset_card(my_run)` returns.")
        expect(my_card == dataset_card(my_run), "`my_card` is not the card of `my_run` (or the run changed since): "
                                                "make it again with `dataset_card(my_run)`.")
        for step in steps:
            name = step["report"]["step"]
            expect(f"| {name} |" in my_card, f"The card does not show the step {name!r}.")
        return (f"{len(steps)} steps, each in the card with what it dropped. Read the card as a stranger would: "
                "would you train on this data?")


q1 = WriteARecipe()
q2 = AskTheServer()
q3 = OwnPipeline()
q4 = OwnRun()
EXERCISES = (q1, q2, q3, q4)
