"""Evol-Instruct (Xu et al. 2023): evolve seed instructions into harder (in-depth) or new (in-breadth) ones, and
eliminate the evolutions that failed.

distilabel's ``EvolInstruct`` gives the mutation prompts; it picks the mutation with ``np.random`` (ignoring
``seed``) and keeps only prompts of 512-1024 characters with no iteration cap, so small models loop forever. The loop
here runs a fixed number of rounds, draws each mutation with ``seed``, and applies the paper's elimination rules
(each counted): no information gain (a rule for identical text, then the paper's equal / not-equal judge, constrained
to those two answers), a response that says "sorry" in under 80 words, a response of only punctuation and stop
words, and an evolved prompt that copies the template's words. Failed evolutions go back to the pool.

    >>> evolution_elimination_reason("Explain tides.", "Explain tides and their cause in 3 steps.",
    ...                              "Sorry, I cannot help with that.")
    'sorry_short_response'
"""

from __future__ import annotations

import random
import re
import time
import warnings
from functools import lru_cache
from typing import Any, Dict, List, Optional, Sequence, Tuple

from smolsynth.arguments import check_choice, check_number, check_texts
from smolsynth.formats import GENERATION, INSTRUCTION
from smolsynth.rows import Result, Row, from_steps, partition
from smolsynth.stats import normalize_text

__all__ = ["EVOL_IN_BREADTH", "EVOL_IN_DEPTH", "EVOL_JUDGE_PROMPT", "STOP_WORDS", "TEMPLATE_WORDS",
           "copies_template_words", "evol_instruct", "evol_mutation_templates", "evolution_elimination_reason"]

EVOL_IN_DEPTH: Tuple[str, ...] = ("CONSTRAINTS", "DEEPENING", "CONCRETIZING", "INCREASED_REASONING_STEPS",
                                  "COMPLICATE_INPUT")
"""The in-depth mutations: add a constraint, deepen, concretize, ask for more reasoning steps, complicate the input
(the first four are distilabel's prompts; the fifth uses distilabel's rewrite prompt with the paper's method)."""
EVOL_IN_BREADTH: Tuple[str, ...] = ("BREADTH",)
"""The in-breadth mutation: a brand-new, rarer instruction in the same domain (distilabel's prompt)."""

_COMPLICATE_INPUT = ("Please add a short piece of input data in a format such as a table, JSON, XML, SQL or code to "
                     "#The Given Prompt#, and make the prompt ask about it.")

EVOL_JUDGE_PROMPT = (
    "Here are two Instructions to an AI assistant, do you think they are equal to each other, which meet the "
    "following requirements:\n1. They have same constraints and requirements.\n2. They have same depth and breadth "
    "of the inquiry.\nThe First Prompt: {{ parent }}\nThe Second Prompt: {{ evolved }}\nYour Judgement (Just answer: "
    "Equal or Not Equal. No need to explain the reason.):")
"""The Evol-Instruct paper's "information gain" check (its appendix), as a distilabel TextGeneration template."""

TEMPLATE_WORDS: Tuple[str, ...] = ("given prompt", "rewritten prompt", "created prompt", "#the given prompt#",
                                   "#rewritten prompt#", "#created prompt#", "#given prompt#", "prompt rewriter",
                                   "prompt creator")
"""Words of the mutation prompts that an evolved instruction must not copy (case-insensitive)."""

STOP_WORDS = frozenset("""a about above after again against all am an and any are aren't as at be because been before
being below between both but by can can't cannot could couldn't did didn't do does doesn't doing don't down during each
few for from further had hadn't has hasn't have haven't having he he'd he'll he's her here here's hers herself him
himself his how how's i i'd i'll i'm i've if in into is isn't it it's its itself let's me more most mustn't my myself
no nor not of off on once only or other ought our ours ourselves out over own same shan't she she'd she'll she's should
shouldn't so some such than that that's the their theirs them themselves then there there's these they they'd they'll
they're they've this those through to too under until up very was wasn't we we'd we'll we're we've were weren't what
what's when when's where where's which while who who's whom why why's with won't would wouldn't you you'd you'll you're
you've your yours yourself yourselves yes ok okay just also""".split())
"""English stop words (the classic list), for the "only punctuation and stop words" elimination rule."""


def copies_template_words(text: str) -> bool:
    """True when ``text`` copies words of the mutation prompt ("given prompt", "#Rewritten Prompt#", ...).

    >>> copies_template_words("#Rewritten Prompt#: Explain tides."), copies_template_words("Explain tides.")
    (True, False)
    """
    lowered = text.lower()
    return any(word in lowered for word in TEMPLATE_WORDS)


def evolution_elimination_reason(parent: str, evolved: Optional[str], response: Optional[str] = None) -> Optional[str]:
    """The rule-based eliminations of Evol-Instruct (those that need no judge), or None if the evolution stands.

    On the evolved instruction: ``empty_evolution``, ``copies_prompt_template``, ``no_information_gain`` (the same
    text as the parent after normalization; the judge decides the subtler cases). On its response (when given):
    ``sorry_short_response`` ("sorry" in a response under 80 words), ``only_stop_words_response`` (nothing but
    punctuation and stop words, or empty).

    >>> evolution_elimination_reason("Explain tides.", "Explain tides and their cause in 3 steps.",
    ...                              "Sorry, I cannot help with that.")
    'sorry_short_response'
    """
    if not isinstance(evolved, str) or not evolved.strip():
        return "empty_evolution"
    if copies_template_words(evolved):
        return "copies_prompt_template"
    if normalize_text(evolved) == normalize_text(parent):
        return "no_information_gain"
    if response is None:
        return None
    words = re.findall(r"[^\W_]+(?:'[^\W_]+)?", response.lower())
    if "sorry" in response.lower() and len(response.split()) < 80:
        return "sorry_short_response"
    if all(w in STOP_WORDS for w in words):
        return "only_stop_words_response"
    return None


@lru_cache(maxsize=None)  # built on first use (importing distilabel is slow), once
def _evol_class() -> type:
    """distilabel's EvolInstruct, applying the mutation named in each row's ``mutation`` column, one per call."""
    from pydantic import PrivateAttr

    from smolsynth.runner import split_batch_statistics
    from smolsynth.verbosity import import_distilabel, quiet_subclassing

    with quiet_subclassing():
        base = import_distilabel("distilabel.steps.tasks").EvolInstruct

        class EvolInstructChosenMutation(base):  # type: ignore[misc, valid-type]
            """``EvolInstruct`` that applies the mutation named in each input row's ``mutation`` column."""

            _queue: List[str] = PrivateAttr(default_factory=list)

            @property
            def inputs(self) -> Dict[str, bool]:
                return {"instruction": True, "mutation": True}

            def process(self, inputs: Any) -> Any:
                self._queue = [row["mutation"] for row in inputs]
                for batch in super().process(inputs):
                    yield split_batch_statistics(batch)  # distilabel gives every row the batch's statistics

            def _apply_random_mutation(self, instruction: str) -> str:
                name = self._queue.pop(0)
                return self.mutation_templates[name].replace("<PROMPT>", instruction)

        EvolInstructChosenMutation.__module__ = __name__
        EvolInstructChosenMutation.__qualname__ = "EvolInstructChosenMutation"
    return EvolInstructChosenMutation


def evol_mutation_templates() -> Dict[str, str]:
    """The mutation prompts by name: distilabel's four in-depth ones and its in-breadth one, plus complicate-input."""
    from smolsynth.verbosity import import_distilabel

    utils = import_distilabel("distilabel.steps.tasks.evol_instruct.utils")
    templates = dict(utils.MUTATION_TEMPLATES)
    templates["COMPLICATE_INPUT"] = utils.REWRITE_INSTRUCTION.format(_COMPLICATE_INPUT)
    return templates


def _judge_verdict(text: Any) -> Optional[str]:
    if not isinstance(text, str):
        return None
    match = re.match(r"\s*(not equal|equal)\b", text, re.IGNORECASE)
    return match.group(1).lower() if match else None



def evol_instruct(seeds: Sequence[str], *, rounds: int = 2, mutations: Optional[Sequence[str]] = None,
                  max_rows: Optional[int] = None, judge: bool = True, model: Optional[str] = None, llm: Any = None,
                  judge_llm: Any = None, response_llm: Any = None, max_new_tokens: int = 256,
                  response_max_new_tokens: Optional[int] = None, temperature: float = 0.7,
                  response_temperature: float = 0.0, seed: int = 0, batch_size: Optional[int] = None,
                  cache: bool = True, progress: bool = True, allow_truncated: bool = False) -> Result:
    """Evolve ``seeds`` for ``rounds`` rounds; keep the evolutions that pass every elimination rule.

    Each round takes the pool (the seeds at first), picks a mutation per instruction from ``mutations`` (default: all
    of :data:`EVOL_IN_DEPTH` and :data:`EVOL_IN_BREADTH`, uniformly, seeded by ``seed``), rewrites it with distilabel's
    ``EvolInstruct`` prompt, then eliminates failed evolutions, counting each reason:

    1. rules on the evolved instruction (:func:`evolution_elimination_reason`): ``empty_evolution``,
       ``copies_prompt_template``, ``no_information_gain`` (identical to its parent);
    2. the paper's judge (``judge=True``): the model answers "Equal" or "Not Equal" to :data:`EVOL_JUDGE_PROMPT`,
       constrained to exactly those words; "Equal" -> ``no_information_gain``, an unreadable answer -> ``judge_unparsed``;
    3. an answer to the evolved instruction (greedy by default, :func:`smolsynth.generation.generate`), then the
       answer rules: ``sorry_short_response``, ``only_stop_words_response``.

    A successful evolution replaces its parent in the pool (and is a row of the result); a failed one leaves the
    parent in the pool for the next round. ``max_rows`` caps the evolutions attempted.

    Returns a :class:`~smolsynth.rows.Result`: rows of the survivors (``instruction``, ``generation``, ``parent``,
    ``origin`` (the seed it descends from), ``mutation``, ``round``), the eliminated evolutions with ``reason``, and
    the reports of every round's steps in ``.steps``.

    >>> result = evol_instruct(["Explain tides."], rounds=2, model="smolsynth/tiny", max_new_tokens=32)  # doctest: +SKIP
    """
    from smolsynth.generation import generate, llm_for
    from smolsynth.llm import LocalLLM
    from smolsynth.runner import run
    from smolsynth.verbosity import import_distilabel, quiet_distilabel

    seeds = check_texts("seeds", seeds)
    check_number("rounds", rounds, minimum=1, integer=True)
    check_number("max_rows", max_rows, minimum=1, integer=True, allow_none=True)
    check_number("max_new_tokens", max_new_tokens, minimum=1, integer=True)
    check_number("response_max_new_tokens", response_max_new_tokens, minimum=1, integer=True, allow_none=True)
    check_number("temperature", temperature, minimum=0.0, maximum=5.0)
    check_number("response_temperature", response_temperature, minimum=0.0, maximum=5.0)
    templates = evol_mutation_templates()
    names = list(mutations) if mutations is not None else list(EVOL_IN_DEPTH + EVOL_IN_BREADTH)
    if not names:
        raise ValueError(f"mutations=[] names no mutation; choose from {sorted(templates)}.")
    for name in names:
        check_choice("mutations", name, sorted(templates))
    started = time.perf_counter()
    rng = random.Random(seed)
    llm = llm_for(model, llm, seed=seed, max_new_tokens=max_new_tokens, temperature=temperature)
    model_id = getattr(llm, "model_name", None) or model
    if response_llm is None:
        response_llm = LocalLLM(model_id, seed=seed, generation_kwargs={
            "max_new_tokens": response_max_new_tokens or max_new_tokens, "temperature": response_temperature})
    if judge and judge_llm is None:
        judge_llm = LocalLLM(model_id, seed=seed, structured_output={"format": "regex", "schema": "(Equal|Not Equal)"},
                             generation_kwargs={"max_new_tokens": 8, "temperature": 0.0})
    tasks = import_distilabel("distilabel.steps.tasks")
    with quiet_distilabel():
        evolve_task = _evol_class()(llm=llm, num_evolutions=1, mutation_templates=templates, name="evol_instruct")
        judge_task = tasks.TextGeneration(llm=judge_llm, template=EVOL_JUDGE_PROMPT, columns=["parent", "evolved"],
                                          name="evol_judge") if judge else None
    pool: List[Row] = [{INSTRUCTION: s, "origin": s} for s in seeds]
    survivors: List[Row] = []
    dropped: List[Row] = []
    steps = []
    attempts = 0
    for round_no in range(1, rounds + 1):
        room = len(pool) if max_rows is None else min(len(pool), max_rows - len(survivors))
        if room <= 0:
            break
        batch = [{**item, "mutation": rng.choice(names)} for item in pool[:room]]
        waiting = pool[room:]  # not attempted this round (max_rows): they stay in the pool
        attempts += len(batch)
        evolved = run(evolve_task, batch, batch_size=batch_size, cache=cache, progress=progress,
                      desc=f"evol round {round_no}", allow_truncated=allow_truncated)
        evolved.report.step = f"round {round_no}: evolve"
        failed = [{"parent": r[INSTRUCTION], "origin": r["origin"], "mutation": r["mutation"], "round": round_no,
                   INSTRUCTION: None, "reason": r["reason"]} for r in evolved.dropped_rows]
        candidates = [{INSTRUCTION: r["evolved_instruction"], "parent": r[INSTRUCTION], "origin": r["origin"],
                       "mutation": r["mutation"], "round": round_no} for r in evolved.rows]
        ruled = partition(candidates, lambda r: evolution_elimination_reason(r["parent"], r[INSTRUCTION]),
                          step=f"round {round_no}: rules (instruction)")
        round_steps = [evolved.report, ruled.report]
        survived = ruled
        if judge_task is not None:
            verdicts = run(judge_task, [{"parent": r["parent"], "evolved": r[INSTRUCTION]} for r in ruled.rows],
                           batch_size=batch_size, cache=cache, progress=False, desc=f"round {round_no}: judge")
            answer = {(v["parent"], v["evolved"]): _judge_verdict(v.get(GENERATION)) for v in verdicts.rows}

            def gained(row: Row) -> Optional[str]:
                verdict = answer.get((row["parent"], row[INSTRUCTION]))
                return None if verdict == "not equal" else \
                    "no_information_gain" if verdict == "equal" else "judge_unparsed"

            survived = partition(ruled.rows, gained, step=f"round {round_no}: judge (information gain)",
                                 model=verdicts.report.model)
            for name in ("input_tokens", "output_tokens", "seconds", "cached_rows"):
                setattr(survived.report, name, getattr(verdicts.report, name))
            round_steps.append(survived.report)
        answered = generate(survived.rows, llm=response_llm, batch_size=batch_size, cache=cache, progress=False,
                            desc=f"round {round_no}: responses",
                            allow_truncated=allow_truncated) if survived.rows else None
        answered_rows = [{k: v for k, v in r.items() if k != "model_name"} for r in (answered.rows if answered else [])]
        no_answer = [{k: v for k, v in r.items() if k not in ("model_name", "raw_output", "error")}
                     for r in (answered.dropped_rows if answered else [])]
        final = partition(answered_rows, lambda r: evolution_elimination_reason(r["parent"], r[INSTRUCTION],
                                                                                r.get(GENERATION) or ""),
                          step=f"round {round_no}: rules (response)")
        if answered is not None:
            answered.report.step = f"round {round_no}: responses"
            round_steps.append(answered.report)
        steps += round_steps + [final.report]
        round_failed = failed + ruled.dropped_rows + (survived.dropped_rows if survived is not ruled else []) + \
            no_answer + final.dropped_rows
        dropped.extend(round_failed)
        survivors.extend(final.rows)
        # the pool: successful evolutions replace their parents; failed ones leave the parent for another try
        back = [{INSTRUCTION: r["parent"], "origin": r["origin"]} for r in round_failed]
        pool = [{INSTRUCTION: r[INSTRUCTION], "origin": r["origin"]} for r in final.rows] + back + waiting
    return from_steps("evol_instruct", steps, rows=survivors, dropped_rows=dropped, rows_in=attempts, started=started,
                      model=model_id, params={"seeds": list(seeds), "rounds": rounds, "mutations": names})
