"""Instruction datasets three ways (Self-Instruct, Magpie, Evol-Instruct), responses, and the hand-off to TRL.

Each method is thin over distilabel's own task (its prompt and its parser), run in this process by
:func:`smolsynth.runner.run`, plus what the paper does around the prompt and distilabel does not:

* :func:`self_instruct`: distilabel's ``SelfInstruct`` prompt on your contexts, one instruction per row, numbering and
  bullets stripped, then the paper's filters (:func:`filter_instructions`). :func:`self_instruct_bootstrap` is the
  paper's loop (Wang et al. 2022): a seed pool, prompts showing 6 seed + 2 generated instructions (shuffled), a new
  instruction kept only if its ROUGE-L F (no stemming) against seeds and pool is <= 0.7, and the length / keyword /
  first-character filters.
* :func:`magpie`: distilabel's ``Magpie`` task through the runner with a row count (never ``MagpieGenerator``, which
  hangs when ``num_rows % batch_size != 0``), single or multi-turn, with optional system prompts (one, a list, or
  weighted); instructions sampled at temperature 1.0 / top_p 1.0, responses greedy (Xu et al. 2024); instructions
  ending with ":" and (near) duplicates are removed.
* :func:`evol_instruct`: distilabel's ``EvolInstruct`` prompts (in-depth and in-breadth mutations) in our own loop: a
  fixed number of rounds, seeded mutation choice, capped rows, and the paper's elimination rules (Xu et al. 2023),
  each counted; failed evolutions go back to the pool.
* :func:`generate_responses` answers any instruction set; :func:`to_sft` makes the SFT dataset TRL's
  ``SFTTrainer`` reads as is: only a ``messages`` column (DESIGN.md D6), or ``prompt``/``completion``.

Every function returns a :class:`~smolsynth.runner.RunResult` (``.dataset``, ``.dropped`` with a ``reason`` per row,
``.report``); the multi-stage ones a :class:`StagedResult`, whose ``.funnel`` shows each stage. Nothing is dropped
silently.

    >>> result = to_sft([{"instruction": "Say hi", "response": "Hi!"}, {"instruction": "Oops", "response": None}])
    >>> result.dataset[0]["messages"]
    [{'role': 'user', 'content': 'Say hi'}, {'role': 'assistant', 'content': 'Hi!'}]
    >>> result.report.dropped
    {'missing_response': 1}
"""

from __future__ import annotations

import random
import re
import string
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Literal, Mapping, Optional, Sequence, Tuple, Union

from smolsynth.report import Report, ReportTable, count_reasons
from smolsynth.runner import RunResult, as_rows, to_dataset
from smolsynth.stats import NearDuplicateIndex, normalize_text

Row = Dict[str, Any]

__all__ = [
    "EVOL_IN_BREADTH", "EVOL_IN_DEPTH", "EVOL_JUDGE_PROMPT", "SELF_INSTRUCT_BLOCKLIST", "StagedResult",
    "copies_template_words", "evol_instruct", "evol_mutation_templates", "evolution_elimination_reason", "filter_instructions",
    "generate_responses", "instruction_rule", "magpie", "rouge_l", "self_instruct", "self_instruct_bootstrap",
    "strip_numbering", "to_sft",
]


# --------------------------------------------------------------------------------------------------- results
@dataclass
class StagedResult(RunResult):
    """A :class:`~smolsynth.runner.RunResult` made of several stages: ``.report`` is the whole (rows in: what the
    method produced as candidates; dropped: every reason, summed), ``.stages`` the report of each stage, ``.funnel``
    them as one table, and ``.params`` the inputs that matter for checking it (e.g. the seeds)."""

    stages: List[Report] = field(default_factory=list)
    params: Dict[str, Any] = field(default_factory=dict)

    @property
    def funnel(self) -> ReportTable:
        """Every stage's report, as one table."""
        return Report.combine(self.stages)

    def __str__(self) -> str:
        return f"{self.report}\n\n{self.funnel}"

    __repr__ = __str__  # a terminal (or nbval's log) shows the funnel, not every field

    def _repr_html_(self) -> str:
        return self.funnel._repr_html_() + f"<p><strong>total</strong>: {self.report}</p>"


def _sum_dropped(reports: Iterable[Report]) -> Dict[str, int]:
    total: Counter = Counter()
    for r in reports:
        total.update(r.dropped)
    return dict(total)


def _tokens(reports: Iterable[Report]) -> Tuple[int, int]:
    reports = list(reports)
    return sum(r.input_tokens for r in reports), sum(r.output_tokens for r in reports)


def _strings(values: Any, name: str, *, minimum: int = 1) -> List[str]:
    if isinstance(values, str) or not isinstance(values, (list, tuple)):
        raise TypeError(f"{name} must be a list of strings, e.g. {name}=['Explain photosynthesis.', ...]; got a "
                        f"{type(values).__name__}.")
    for i, value in enumerate(values):
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{name}[{i}] is {value!r}: every item must be a non-empty string.")
    if len(values) < minimum:
        raise ValueError(f"{name} has {len(values)} item(s); at least {minimum} are needed.")
    return list(values)


def _positive(value: Any, name: str, *, zero: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < (0 if zero else 1):
        raise ValueError(f"{name}={value!r} must be an integer >= {0 if zero else 1}.")


def _make_llm(model: Optional[str], llm: Any, seed: int, **generation_kwargs: Any) -> Any:
    """``llm`` when given (used as it is), else a LocalLLM on ``model`` with these generation settings."""
    if llm is not None:
        return llm
    from smolsynth.llm import LocalLLM

    return LocalLLM(model, seed=seed, generation_kwargs=generation_kwargs)


def _tasks() -> Any:
    from smolsynth.verbosity import import_distilabel

    return import_distilabel("distilabel.steps.tasks")


# ------------------------------------------------------------------------------------------------- responses
def generate_responses(data: Any, *, column: str = "instruction", system_prompt: Optional[str] = None,
                       model: Optional[str] = None, llm: Any = None, max_new_tokens: int = 256,
                       temperature: float = 0.7, seed: int = 0, batch_size: Optional[int] = None,
                       cache: bool = True, progress: bool = True, desc: str = "responses") -> RunResult:
    """Answer every instruction in ``data`` with distilabel's ``TextGeneration``; the answer goes to ``response``.

    ``data`` is a list of strings, a list of dicts or a Dataset with the instructions in ``column``; other columns are
    kept (a ``system_prompt`` column is used per row). Rows whose answer is missing or empty are set aside by the
    runner with a reason. Returns a :class:`~smolsynth.runner.RunResult`.

    >>> generate_responses(["Name a colour."], model="smolsynth/tiny", max_new_tokens=8).dataset.column_names  # doctest: +SKIP
    ['instruction', 'response', 'model_name']
    """
    from smolsynth.runner import quiet_distilabel, run

    if isinstance(data, (list, tuple)) and data and all(isinstance(x, str) for x in data):
        data = [{column: text} for text in data]
    rows = as_rows(data)
    if rows and column not in rows[0]:
        raise ValueError(f"Column {column!r} is not in the data (columns: {sorted(rows[0])}); pass column= to name "
                         "the instruction column.")
    llm = _make_llm(model, llm, seed, max_new_tokens=max_new_tokens, temperature=temperature)
    with quiet_distilabel():
        task = _tasks().TextGeneration(llm=llm, system_prompt=system_prompt, name="responses",
                                       input_mappings={"instruction": column} if column != "instruction" else {},
                                       output_mappings={"generation": "response"})
    result = run(task, rows, batch_size=batch_size, cache=cache, progress=progress, desc=desc)
    return result


# ------------------------------------------------------------------------------------------------------- SFT
def _conversation_problem(messages: Any) -> Optional[str]:
    if not isinstance(messages, list) or not messages:
        return "invalid_conversation"
    turns = [m for m in messages if isinstance(m, dict) and m.get("role") != "system"]
    if len(turns) != len(messages) - (1 if messages[0].get("role") == "system" else 0):
        return "invalid_conversation"
    for i, message in enumerate(turns):
        if message.get("role") != ("user", "assistant")[i % 2]:
            return "invalid_conversation"
        content = message.get("content")
        if not isinstance(content, str) or not content.strip():
            return "empty_turn"
    if not turns or turns[-1]["role"] != "assistant":
        return "missing_response"
    return None


def to_sft(data: Any, *, instruction_column: str = "instruction", response_column: Optional[str] = None,
           system_column: Optional[str] = None, messages_column: Optional[str] = None,
           format: Literal["messages", "prompt_completion"] = "messages") -> RunResult:
    """Convert rows to an SFT dataset that TRL's ``SFTTrainer`` accepts as is.

    * single turn: ``instruction_column`` and ``response_column`` (default: ``generation`` if the data has it, else
      ``response``), and optionally ``system_column``;
    * multi-turn: ``messages_column`` holds the conversation (a list of ``{"role", "content"}``, user and assistant
      alternating, ending with the assistant), e.g. Magpie's ``conversation``.

    ``format="messages"`` (default) gives a single ``messages`` column; ``"prompt_completion"`` gives ``prompt``
    (every message but the last) and ``completion`` (the last assistant message), both message lists, so that the
    loss is computed on the completion only. Never a string ``prompt`` beside ``messages`` (DESIGN.md D6).

    Rows that cannot become a conversation are set aside with a reason (``missing_instruction``,
    ``missing_response``, ``empty_turn``, ``invalid_conversation``), never turned into empty turns. Returns a
    :class:`~smolsynth.runner.RunResult`.

    >>> to_sft([{"instruction": "Hi", "generation": "Hello"}], format="prompt_completion").dataset[0]
    {'prompt': [{'role': 'user', 'content': 'Hi'}], 'completion': [{'role': 'assistant', 'content': 'Hello'}]}
    """
    if format not in ("messages", "prompt_completion"):
        raise ValueError(f"format={format!r} must be 'messages' or 'prompt_completion'.")
    started = time.perf_counter()
    rows = as_rows(data)
    if rows and messages_column is None and response_column is None:
        found = [c for c in ("generation", "response") if c in rows[0]]
        if len(found) > 1:
            raise ValueError("The data has both a 'generation' and a 'response' column: pass response_column= to "
                             "say which one holds the answers.")
        response_column = found[0] if found else "generation"
    response_column = response_column or "generation"
    if rows:
        needed = (messages_column, system_column) if messages_column else \
            (instruction_column, response_column, system_column)
        for column in filter(None, needed):
            if column not in rows[0]:
                raise ValueError(f"Column {column!r} is not in the data (columns: {sorted(rows[0])}); pass "
                                 f"instruction_column=/response_column=/system_column=/messages_column= to name yours.")
    kept: List[Row] = []
    dropped: List[Row] = []
    for row in rows:
        system = row.get(system_column) if system_column else None
        head = [{"role": "system", "content": system}] if isinstance(system, str) and system.strip() else []
        if messages_column:
            conversation = row.get(messages_column)
            problem = _conversation_problem(conversation)
            if problem:
                dropped.append({**row, "reason": problem})
                continue
            if conversation[0].get("role") == "system":
                head, conversation = [dict(conversation[0])], conversation[1:]
            messages = head + [{"role": m["role"], "content": m["content"]} for m in conversation]
        else:
            instruction, response = row.get(instruction_column), row.get(response_column)
            if not isinstance(instruction, str) or not instruction.strip():
                dropped.append({**row, "reason": "missing_instruction"})
                continue
            if not isinstance(response, str) or not response.strip():
                dropped.append({**row, "reason": "missing_response"})
                continue
            messages = head + [{"role": "user", "content": instruction}, {"role": "assistant", "content": response}]
        if format == "messages":
            kept.append({"messages": messages})
        else:
            kept.append({"prompt": messages[:-1], "completion": messages[-1:]})
    report = Report("to_sft", rows_in=len(rows), rows_out=len(kept), dropped=count_reasons(dropped),
                    seconds=time.perf_counter() - started)
    return RunResult(dataset=to_dataset(kept), dropped=to_dataset(dropped), report=report)


# ---------------------------------------------------------------------------------------------- Self-Instruct
SELF_INSTRUCT_BLOCKLIST: Tuple[str, ...] = ("image", "images", "graph", "graphs", "picture", "pictures", "file",
                                            "files", "map", "maps", "draw", "plot", "go to")
"""Self-Instruct drops instructions that mention these (a text model cannot see or produce them)."""

_NUMBERING = re.compile(
    r"^\s*(?:\*\*)?(?:(?:task|query|instruction|question|prompt)\s*#?\d+\s*[:.)-]|\(?\d{1,3}[.)]|\d{1,3}\s*[-:]|"
    r"[-*•·–]|#{1,6})(?:\*\*)?\s+", re.IGNORECASE)


def strip_numbering(text: str) -> str:
    """``text`` without a leading list marker: ``1.``, ``2)``, ``(3)``, ``4 -``, ``Task 5:``, ``-``, ``*``, ``•``.

    distilabel's SelfInstruct splits the model's answer on newlines and keeps these.

    >>> [strip_numbering(t) for t in ["1. Name a bird.", "- Name a tree.", "Task 3: Sort this.", "3.5 kg is heavy?"]]
    ['Name a bird.', 'Name a tree.', 'Sort this.', '3.5 kg is heavy?']
    """
    previous = None
    text = text.strip()
    while previous != text:  # "1. - Name a bird." loses both markers
        previous, text = text, _NUMBERING.sub("", text, count=1).strip()
    return text


_SCORER: Any = None


def rouge_l(a: str, b: str) -> float:
    """ROUGE-L F-measure between two texts, without stemming (``rouge-score``, the implementation the Self-Instruct
    authors used). Symmetric; 1.0 for the same words in the same order.

    >>> rouge_l("Write a poem about the sea.", "Write a poem about the sea.")
    1.0
    >>> round(rouge_l("Write a poem about the sea.", "Write a story about the forest."), 3)  # 4 of 6 words
    0.667
    """
    global _SCORER
    if _SCORER is None:
        from rouge_score import rouge_scorer

        _SCORER = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    return float(_SCORER.score(a, b)["rougeL"].fmeasure)


def instruction_rule(text: str, *, min_words: int = 4, max_words: int = 150,
                     blocklist: Sequence[str] = SELF_INSTRUCT_BLOCKLIST) -> Optional[str]:
    """Which of Self-Instruct's rule filters removes ``text`` (a reason), or None to keep it.

    Reasons: ``empty``, ``too_short`` (fewer than ``min_words`` words: the paper drops <= 3), ``too_long`` (more
    than ``max_words``: > 150), ``blocked_keyword`` (mentions image/graph/picture/file/map/draw/plot/"go to", as a
    whole word), ``write_a_program`` (starts with "Write a program"), ``starts_with_punctuation``,
    ``starts_with_non_ascii``.

    >>> instruction_rule("Draw a map of your town for a visitor."), instruction_rule("Explain why the sky is blue.")
    ('blocked_keyword', None)
    """
    text = text.strip()
    if not text:
        return "empty"
    words = len(text.split())
    if words < min_words:
        return "too_short"
    if words > max_words:
        return "too_long"
    lowered = text.lower()
    if any(re.search(rf"\b{re.escape(word.lower())}\b", lowered) for word in blocklist):
        return "blocked_keyword"
    if text.startswith("Write a program"):
        return "write_a_program"
    if text[0] in string.punctuation:
        return "starts_with_punctuation"
    if not text[0].isascii():
        return "starts_with_non_ascii"
    return None


def filter_instructions(candidates: Any, *, references: Sequence[str] = (), column: str = "instruction",
                        rouge_threshold: float = 0.7, min_words: int = 4, max_words: int = 150,
                        blocklist: Sequence[str] = SELF_INSTRUCT_BLOCKLIST, step: str = "filter") -> RunResult:
    """Self-Instruct's filters, in the paper's order: the rules of :func:`instruction_rule`, then novelty.

    A candidate is kept only if its ROUGE-L F against every reference (seeds and the pool so far) and every candidate
    kept before it is ``<= rouge_threshold``; otherwise it is dropped as ``too_similar``, with ``max_rouge_l`` and
    ``most_similar`` saying against what. Kept rows get ``max_rouge_l`` and ``most_similar`` too. ``candidates`` is a
    list of strings or rows with ``column``. Returns a :class:`~smolsynth.runner.RunResult`; ROUGE-L costs one
    comparison per (candidate, reference) pair.

    >>> r = filter_instructions(["Write a poem about the sea.", "Write a poem about the sea, please."],
    ...                         references=["Explain how tides work."])
    >>> r.report.dropped, r.dataset["instruction"][:]
    ({'too_similar': 1}, ['Write a poem about the sea.'])
    """
    if not 0.0 <= rouge_threshold <= 1.0:
        raise ValueError(f"rouge_threshold={rouge_threshold} must be between 0 and 1 (the paper uses 0.7).")
    started = time.perf_counter()
    if isinstance(candidates, (list, tuple)) and all(isinstance(c, str) for c in candidates):
        rows = [{column: c} for c in candidates]
    else:
        rows = as_rows(candidates)
    pool = [r for r in _strings(list(references), "references", minimum=0)] if references else []
    kept: List[Row] = []
    dropped: List[Row] = []
    for row in rows:
        text = row.get(column)
        reason = instruction_rule(text, min_words=min_words, max_words=max_words, blocklist=blocklist) \
            if isinstance(text, str) else "empty"
        if reason:
            dropped.append({**row, "reason": reason})
            continue
        best, closest = 0.0, None
        for other in pool:
            score = rouge_l(other, text)
            if score > best:
                best, closest = score, other
        out = {**row, column: text.strip(), "max_rouge_l": round(best, 4), "most_similar": closest}
        if best > rouge_threshold + 1e-9:  # 0.7 exactly is kept (floating point: 0.7000000000000001)
            dropped.append({**out, "reason": "too_similar"})
            continue
        kept.append(out)
        pool.append(text.strip())
    report = Report(step, rows_in=len(rows), rows_out=len(kept), dropped=count_reasons(dropped),
                    seconds=round(time.perf_counter() - started, 3))
    return RunResult(dataset=to_dataset(kept), dropped=to_dataset(dropped), report=report)


def _explode(result: RunResult, *, extra: Mapping[str, Any], step: str) -> Tuple[List[Row], Report]:
    """One row per instruction of distilabel's SelfInstruct output, numbering stripped."""
    started = time.perf_counter()
    out: List[Row] = []
    rows = result.dataset.to_list() if len(result.dataset) else []
    for row in rows:
        for text in row.get("instructions") or []:
            out.append({"instruction": strip_numbering(text), "raw": text, "context": row.get("input"), **extra})
    return out, Report(step, rows_in=len(rows), rows_out=len(out), seconds=round(time.perf_counter() - started, 3))


def _self_instruct_task(llm: Any, num_instructions: int, application_description: str,
                        criteria: Optional[str]) -> Any:
    from smolsynth.runner import quiet_distilabel

    kwargs: Dict[str, Any] = {"num_instructions": num_instructions, "application_description": application_description}
    if criteria is not None:
        kwargs["criteria_for_query_generation"] = criteria
    with quiet_distilabel():
        return _tasks().SelfInstruct(llm=llm, name="self_instruct", **kwargs)


def self_instruct(contexts: Any, *, model: Optional[str] = None, llm: Any = None, num_instructions: int = 5,
                  application_description: str = "AI assistant", criteria: Optional[str] = None,
                  references: Sequence[str] = (), rouge_threshold: float = 0.7, max_new_tokens: int = 256,
                  temperature: float = 0.7, seed: int = 0, batch_size: Optional[int] = None, cache: bool = True,
                  progress: bool = True) -> StagedResult:
    """distilabel's ``SelfInstruct`` on each context (a topic, a document, a description), then the paper's filters.

    The model writes ``num_instructions`` queries per context, one per line; each line becomes a row (numbering and
    bullets stripped, :func:`strip_numbering`), then :func:`filter_instructions` removes rule violations and anything
    with ROUGE-L > ``rouge_threshold`` against ``references`` or an earlier kept instruction. ``contexts`` is a list
    of strings or rows with an ``input`` column. Returns a :class:`StagedResult` (columns ``instruction``, ``raw``,
    ``context``, ``max_rouge_l``, ``most_similar``).

    >>> self_instruct(["Questions a beginner asks about baking bread."], model="smolsynth/tiny")  # doctest: +SKIP
    """
    from smolsynth.runner import run

    _positive(num_instructions, "num_instructions")
    if isinstance(contexts, (list, tuple)) and all(isinstance(c, str) for c in contexts):
        rows = [{"input": c} for c in _strings(list(contexts), "contexts")]
    else:
        rows = as_rows(contexts)
    started = time.perf_counter()
    llm = _make_llm(model, llm, seed, max_new_tokens=max_new_tokens, temperature=temperature)
    generated = run(_self_instruct_task(llm, num_instructions, application_description, criteria), rows,
                    batch_size=batch_size, cache=cache, progress=progress, desc="self_instruct")
    candidates, split = _explode(generated, extra={}, step="split into instructions")
    filtered = filter_instructions(candidates, references=references, rouge_threshold=rouge_threshold)
    stages = [generated.report, split, filtered.report]
    return _staged("self_instruct", stages, kept=filtered.dataset,
                   dropped=generated.dropped.to_list() + filtered.dropped.to_list(),
                   rows_in=len(candidates) + generated.report.dropped_total, started=started,
                   model=generated.report.model, params={"contexts": [r.get("input") for r in rows]})


def _staged(step: str, stages: List[Report], *, kept: Any, dropped: List[Row], rows_in: int, started: float,
            model: Optional[str], params: Dict[str, Any]) -> StagedResult:
    n_in, n_out = _tokens(stages)
    kept_ds = kept if hasattr(kept, "column_names") else to_dataset(kept)
    report = Report(step, rows_in=rows_in, rows_out=len(kept_ds), dropped=count_reasons(dropped), input_tokens=n_in,
                    output_tokens=n_out, seconds=round(time.perf_counter() - started, 3), model=model)
    return StagedResult(dataset=kept_ds, dropped=to_dataset(dropped), report=report, stages=stages, params=params)


BOOTSTRAP_HEADER = "Examples of queries this application receives (write new, different ones):"


def _bootstrap_contexts(seeds: Sequence[str], pool: Sequence[str], rng: random.Random, n: int, seed_examples: int,
                        pool_examples: int) -> List[str]:
    """``n`` prompt contexts: ``pool_examples`` pool instructions (fewer while the pool is small) and seeds up to
    ``seed_examples + pool_examples`` in all, shuffled, one per line under :data:`BOOTSTRAP_HEADER`."""
    contexts = []
    for _ in range(n):
        from_pool = rng.sample(list(pool), min(pool_examples, len(pool)))
        n_seeds = min(len(seeds), seed_examples + pool_examples - len(from_pool))
        examples = rng.sample(list(seeds), n_seeds) + from_pool
        rng.shuffle(examples)
        contexts.append(BOOTSTRAP_HEADER + "\n" + "\n".join(examples))
    return contexts


def self_instruct_bootstrap(seeds: Sequence[str], *, rounds: int = 2, prompts_per_round: int = 8,
                            num_instructions: int = 5, seed_examples: int = 6, pool_examples: int = 2,
                            max_instructions: Optional[int] = None, model: Optional[str] = None, llm: Any = None,
                            application_description: str = "AI assistant", criteria: Optional[str] = None,
                            rouge_threshold: float = 0.7, max_new_tokens: int = 256, temperature: float = 0.7,
                            seed: int = 0, batch_size: Optional[int] = None, cache: bool = True,
                            progress: bool = True) -> StagedResult:
    """The Self-Instruct paper's bootstrap loop, with distilabel's ``SelfInstruct`` prompt.

    Each round builds ``prompts_per_round`` prompts; each shows ``seed_examples`` seed instructions and
    ``pool_examples`` generated ones (fewer while the pool is small; the gap is filled with seeds, as in the authors'
    code), shuffled, as the prompt's context. The model writes ``num_instructions`` new ones per prompt; they are split
    into rows, numbering stripped, and filtered (:func:`filter_instructions`: rules, then ROUGE-L against the seeds
    and the whole pool, ``<= rouge_threshold`` kept). Kept instructions join the pool for the next round. With
    ``max_instructions``, the loop stops once the pool has that many; extra ones are set aside as ``over_max``.

    Returns a :class:`StagedResult`: ``.dataset`` the generated pool (``instruction``, ``round``, ``max_rouge_l``,
    ``most_similar``, ``context``, ``raw``), ``.dropped`` every removed candidate with its reason, ``.stages`` two
    reports per round (generation, filter), ``.params["seeds"]``.

    >>> result = self_instruct_bootstrap(SEEDS, rounds=2, prompts_per_round=4, model="smolsynth/tiny")  # doctest: +SKIP
    >>> result.funnel  # doctest: +SKIP
    """
    from smolsynth.runner import run

    seeds = _strings(seeds, "seeds")
    for name, value in (("rounds", rounds), ("prompts_per_round", prompts_per_round),
                        ("num_instructions", num_instructions), ("seed_examples", seed_examples)):
        _positive(value, name)
    _positive(pool_examples, "pool_examples", zero=True)
    if max_instructions is not None:
        _positive(max_instructions, "max_instructions")
    started = time.perf_counter()
    rng = random.Random(seed)
    llm = _make_llm(model, llm, seed, max_new_tokens=max_new_tokens, temperature=temperature)
    task = _self_instruct_task(llm, num_instructions, application_description, criteria)
    pool: List[Row] = []
    dropped: List[Row] = []
    stages: List[Report] = []
    candidates_total = 0
    for round_no in range(1, rounds + 1):
        if max_instructions is not None and len(pool) >= max_instructions:
            break
        prompts = [{"input": context} for context in _bootstrap_contexts(
            seeds, [p["instruction"] for p in pool], rng, prompts_per_round, seed_examples, pool_examples)]
        generated = run(task, prompts, batch_size=batch_size, cache=cache, progress=progress,
                        desc=f"self_instruct round {round_no}")
        generated.report.step = f"round {round_no}: generate"
        dropped.extend({**r, "round": round_no} for r in generated.dropped.to_list())
        candidates, _ = _explode(generated, extra={"round": round_no}, step="split")
        candidates_total += len(candidates) + generated.report.dropped_total
        filtered = filter_instructions(candidates, references=seeds + [p["instruction"] for p in pool],
                                       rouge_threshold=rouge_threshold, step=f"round {round_no}: filter")
        new = filtered.dataset.to_list() if len(filtered.dataset) else []
        if max_instructions is not None and len(pool) + len(new) > max_instructions:
            room = max_instructions - len(pool)
            dropped.extend({**r, "reason": "over_max"} for r in new[room:])
            filtered.report.dropped = {**filtered.report.dropped, "over_max": len(new) - room}
            filtered.report.rows_out = room
            new = new[:room]
        pool.extend(new)
        dropped.extend(filtered.dropped.to_list() if len(filtered.dropped) else [])
        stages += [generated.report, filtered.report]
    return _staged("self_instruct_bootstrap", stages, kept=pool, dropped=dropped, rows_in=candidates_total,
                   started=started, model=getattr(llm, "model_name", None), params={"seeds": list(seeds)})


# ------------------------------------------------------------------------------------------------------ Magpie
_CLASSES: Dict[str, type] = {}


def _magpie_class() -> type:
    """distilabel's Magpie with separate generation settings for the assistant turns (the paper samples
    instructions at temperature 1.0 and writes responses greedily; distilabel uses one setting for both)."""
    if "magpie" not in _CLASSES:
        from smolsynth.runner import quiet_distilabel

        with quiet_distilabel(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pydantic's note on distilabel's RuntimeParameter typing, not ours
            base = _tasks().Magpie

            class MagpieWithResponseSettings(base):  # type: ignore[misc, valid-type]
                """``Magpie`` whose assistant turns use ``llm.generation_kwargs`` updated with
                ``response_generation_kwargs``."""

                response_generation_kwargs: Optional[Dict[str, Any]] = None

                def _generate_conversation_turn(self, role: str, conversations: Any, active_indices: Any) -> Any:
                    if role != "assistant" or not self.response_generation_kwargs:
                        return super()._generate_conversation_turn(role, conversations, active_indices)
                    saved = self.llm.generation_kwargs
                    self.llm.generation_kwargs = {**(saved or {}), **self.response_generation_kwargs}
                    try:
                        return super()._generate_conversation_turn(role, conversations, active_indices)
                    finally:
                        self.llm.generation_kwargs = saved

            MagpieWithResponseSettings.__module__ = __name__
            MagpieWithResponseSettings.__qualname__ = "MagpieWithResponseSettings"
        _CLASSES["magpie"] = MagpieWithResponseSettings
    return _CLASSES["magpie"]


def _system_prompts(system_prompt: Any, n: int, rng: random.Random) -> Optional[List[str]]:
    """One system prompt per row: the same one, a uniform pick from a list, or a weighted pick from a dict."""
    if system_prompt is None:
        return None
    if isinstance(system_prompt, str):
        if not system_prompt.strip():
            raise ValueError("system_prompt is empty: pass None for no system prompt.")
        return [system_prompt] * n
    if isinstance(system_prompt, (list, tuple)):
        prompts = _strings(list(system_prompt), "system_prompt")
        return [rng.choice(prompts) for _ in range(n)]
    if isinstance(system_prompt, Mapping):
        prompts = _strings(list(system_prompt), "system_prompt (the dict's keys)")
        weights = list(system_prompt.values())
        if any(isinstance(w, bool) or not isinstance(w, (int, float)) or w < 0 for w in weights) or sum(weights) <= 0:
            raise ValueError("system_prompt as a dict maps each prompt to a weight >= 0 (not all 0), e.g. "
                             "{'You are a chef.': 0.7, 'You are a nurse.': 0.3}.")
        return rng.choices(prompts, weights=weights, k=n)
    raise TypeError(f"system_prompt must be a string, a list of strings or a dict prompt -> weight; got a "
                    f"{type(system_prompt).__name__}.")


def _filter_magpie_rows(rows: List[Row], *, n_turns: int, only_instruction: bool,
                        near_duplicate_threshold: float) -> Tuple[List[Row], List[Row]]:
    """Magpie's filters on generated rows: incomplete turns, instructions ending with ":", (near) duplicates."""
    kept: List[Row] = []
    removed: List[Row] = []
    seen: Dict[str, int] = {}
    index = NearDuplicateIndex(threshold=near_duplicate_threshold)
    for row in rows:
        if n_turns > 1 and not only_instruction:
            conversation = row.get("conversation") or []
            users = [m.get("content") for m in conversation if m.get("role") == "user"]
            row = {**row, "instruction": users[0] if users else None}
            if _conversation_problem(conversation) or len(conversation) != 2 * n_turns:
                removed.append({**row, "reason": "empty_turn"})
                continue
        elif not only_instruction and not (isinstance(row.get("response"), str) and row["response"].strip()):
            removed.append({**row, "reason": "empty_turn"})
            continue
        text = (row.get("instruction") or "").strip()
        if not text:
            removed.append({**row, "reason": "empty_turn"})
            continue
        if text.endswith(":"):
            removed.append({**row, "reason": "ends_with_colon"})
            continue
        key = normalize_text(text)
        if key in seen:
            removed.append({**row, "reason": "duplicate", "duplicate_of": kept[seen[key]]["instruction"]})
            continue
        hit = index.match(text)
        if hit is not None:
            removed.append({**row, "reason": "near_duplicate", "duplicate_of": kept[hit[0]]["instruction"],
                            "similarity": hit[1]})
            continue
        seen[key] = len(kept)
        index.add(text)
        kept.append({**row, "instruction": text})
    return kept, removed


def magpie(num_rows: int, *, model: Optional[str] = None, llm: Any = None, n_turns: int = 1,
           only_instruction: bool = False, system_prompt: Union[None, str, Sequence[str], Mapping[str, float]] = None,
           max_new_tokens: int = 256, instruction_temperature: float = 1.0, top_p: float = 1.0,
           response_temperature: float = 0.0, response_max_new_tokens: Optional[int] = None,
           near_duplicate_threshold: float = 0.7, seed: int = 0, batch_size: Optional[int] = None,
           cache: bool = True, progress: bool = True) -> StagedResult:
    """Magpie (Xu et al. 2024): a chat model, given only the start of a user turn, writes a user's request.

    distilabel's ``Magpie`` task runs through the runner with a row count (``MagpieGenerator`` hangs when
    ``num_rows % batch_size != 0``; this never does). The pre-query prompt is derived from the model's chat template
    (:func:`smolsynth.llm.magpie_prompt`); a tokenizer without one raises before any generation.

    Args:
        num_rows: conversations (or instructions) to generate.
        n_turns: user/assistant exchanges per conversation (``> 1``: a ``conversation`` column).
        only_instruction: generate only the instruction (no response).
        system_prompt: one string, a list (one picked per row, uniformly) or a dict prompt -> weight (picked per row
            with those weights), seeded by ``seed``; recorded in a ``system_prompt`` column.
        instruction_temperature, top_p: the paper samples instructions at 1.0 / 1.0.
        response_temperature: the paper writes responses greedily (0.0); a low value (0.2-0.3) varies them a little.
        max_new_tokens, response_max_new_tokens: token budgets (responses default to ``max_new_tokens``).
        near_duplicate_threshold: word 3-gram Jaccard at which an instruction counts as a near duplicate.

    Filters (each counted): ``ends_with_colon`` (the model began a list it never wrote), ``duplicate`` (same text as
    an earlier row after normalization), ``near_duplicate``, ``empty_turn``; plus the runner's ``empty_output``.

    Returns a :class:`StagedResult` with ``instruction`` (the first user turn), ``response`` (single turn),
    ``conversation`` (``n_turns > 1``), ``system_prompt`` (when given) and ``model_name``.

    >>> result = magpie(8, model="smolsynth/tiny", max_new_tokens=16)  # doctest: +SKIP
    """
    from smolsynth.llm import magpie_prompt
    from smolsynth.runner import quiet_distilabel, run

    _positive(num_rows, "num_rows", zero=True)
    _positive(n_turns, "n_turns")
    started = time.perf_counter()
    rng = random.Random(seed)
    prompts = _system_prompts(system_prompt, num_rows, rng)
    llm = _make_llm(model, llm, seed, max_new_tokens=max_new_tokens, temperature=instruction_temperature, top_p=top_p)
    tokenizer = getattr(llm, "tokenizer", None)
    if tokenizer is not None:  # fail now, with the fix, rather than as a dropped batch
        magpie_prompt(tokenizer, [], pre_query_template=getattr(llm, "magpie_pre_query_template", None),
                      chat_template=getattr(llm, "chat_template", None))
    response_kwargs = {"temperature": response_temperature, "max_new_tokens": response_max_new_tokens or
                       max_new_tokens}
    with quiet_distilabel():
        task = _magpie_class()(llm=llm, n_turns=n_turns, only_instruction=only_instruction, name="magpie",
                               response_generation_kwargs=None if only_instruction else response_kwargs)
    data: Any = [{"system_prompt": p} for p in prompts] if prompts is not None else num_rows
    generated = run(task, data, batch_size=batch_size, cache=cache, progress=progress, desc="magpie")
    rows = generated.dataset.to_list() if len(generated.dataset) else []

    t = time.perf_counter()
    dropped: List[Row] = list(generated.dropped.to_list()) if len(generated.dropped) else []
    kept, removed = _filter_magpie_rows(rows, n_turns=n_turns, only_instruction=only_instruction,
                                        near_duplicate_threshold=near_duplicate_threshold)
    filter_report = Report("filter (colon, duplicates)", rows_in=len(rows), rows_out=len(kept),
                           dropped=count_reasons(removed), seconds=round(time.perf_counter() - t, 3))
    return _staged("magpie", [generated.report, filter_report], kept=kept, dropped=dropped + removed,
                   rows_in=num_rows, started=started, model=generated.report.model,
                   params={"num_rows": num_rows, "n_turns": n_turns, "system_prompt": system_prompt})


# ------------------------------------------------------------------------------------------------ Evol-Instruct
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


def _evol_class() -> type:
    """distilabel's EvolInstruct, choosing the mutation from each row's ``mutation`` column (distilabel picks it with
    ``np.random`` and ignores ``seed``), one evolution per call."""
    if "evol" not in _CLASSES:
        from pydantic import PrivateAttr

        from smolsynth.runner import quiet_distilabel

        with quiet_distilabel(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pydantic's note on distilabel's RuntimeParameter typing, not ours
            base = _tasks().EvolInstruct

            class EvolInstructChosenMutation(base):  # type: ignore[misc, valid-type]
                """``EvolInstruct`` that applies the mutation named in each input row's ``mutation`` column."""

                _queue: List[str] = PrivateAttr(default_factory=list)

                @property
                def inputs(self) -> Dict[str, bool]:
                    return {"instruction": True, "mutation": True}

                def process(self, inputs: Any) -> Any:
                    self._queue = [row["mutation"] for row in inputs]
                    yield from super().process(inputs)

                def _apply_random_mutation(self, instruction: str) -> str:
                    name = self._queue.pop(0)
                    return self.mutation_templates[name].replace("<PROMPT>", instruction)

            EvolInstructChosenMutation.__module__ = __name__
            EvolInstructChosenMutation.__qualname__ = "EvolInstructChosenMutation"
        _CLASSES["evol"] = EvolInstructChosenMutation
    return _CLASSES["evol"]


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
                  cache: bool = True, progress: bool = True) -> StagedResult:
    """Evol-Instruct (Xu et al. 2023): evolve seed instructions into harder (in-depth) or new (in-breadth) ones.

    Each of ``rounds`` rounds takes the pool (the seeds at first), picks a mutation per instruction from
    ``mutations`` (default: all of :data:`EVOL_IN_DEPTH` and :data:`EVOL_IN_BREADTH`, uniformly, seeded by ``seed``),
    rewrites it with distilabel's ``EvolInstruct`` prompt, then eliminates failed evolutions, counting each reason:

    1. rules on the evolved instruction (:func:`evolution_elimination_reason`): ``empty_evolution``,
       ``copies_prompt_template``, ``no_information_gain`` (identical to its parent);
    2. the paper's judge (``judge=True``): the model answers "Equal" or "Not Equal" to :data:`EVOL_JUDGE_PROMPT`,
       constrained to exactly those words (``judge_llm``: default a LocalLLM on the same model with a regex);
       "Equal" -> ``no_information_gain``; an answer that does not parse -> ``judge_unparsed``;
    3. a response to the evolved instruction (greedy by default), then the response rules: ``sorry_short_response``,
       ``only_stop_words_response``.

    A successful evolution replaces its parent in the pool (and is a row of the result); a failed one leaves the
    parent in the pool for the next round. ``max_rows`` caps the evolutions attempted so that at most that many rows
    come out. Runner drops (an unparsed rewrite, an empty response) count as failed evolutions, with their reason.

    Returns a :class:`StagedResult`: ``.dataset`` the survivors (``instruction``, ``response``, ``parent``,
    ``origin`` (the seed it descends from), ``mutation``, ``round``), ``.dropped`` the eliminated evolutions with
    ``reason``, ``.stages`` five reports per round, ``.params["seeds"]``.

    >>> result = evol_instruct(["Explain tides."], rounds=2, model="smolsynth/tiny", max_new_tokens=32)  # doctest: +SKIP
    """
    from smolsynth.llm import LocalLLM
    from smolsynth.runner import quiet_distilabel, run

    seeds = _strings(seeds, "seeds")
    _positive(rounds, "rounds")
    if max_rows is not None:
        _positive(max_rows, "max_rows")
    templates = evol_mutation_templates()
    names = list(mutations) if mutations is not None else list(EVOL_IN_DEPTH + EVOL_IN_BREADTH)
    unknown = [m for m in names if m not in templates]
    if unknown or not names:
        raise ValueError(f"mutations={names!r}: unknown {unknown}; choose from {sorted(templates)}.")
    started = time.perf_counter()
    rng = random.Random(seed)
    llm = _make_llm(model, llm, seed, max_new_tokens=max_new_tokens, temperature=temperature)
    model_id = getattr(llm, "model_name", None) or model
    if response_llm is None:
        response_llm = LocalLLM(model_id, seed=seed, generation_kwargs={
            "max_new_tokens": response_max_new_tokens or max_new_tokens, "temperature": response_temperature})
    if judge and judge_llm is None:
        judge_llm = LocalLLM(model_id, seed=seed, structured_output={"format": "regex", "schema": "(Equal|Not Equal)"},
                             generation_kwargs={"max_new_tokens": 8, "temperature": 0.0})
    with quiet_distilabel():
        evolve_task = _evol_class()(llm=llm, num_evolutions=1, mutation_templates=templates, name="evol_instruct")
        judge_task = _tasks().TextGeneration(llm=judge_llm, template=EVOL_JUDGE_PROMPT, columns=["parent", "evolved"],
                                             name="evol_judge") if judge else None
    pool: List[Row] = [{"instruction": s, "origin": s} for s in seeds]
    survivors: List[Row] = []
    dropped: List[Row] = []
    stages: List[Report] = []
    attempts = 0
    for round_no in range(1, rounds + 1):
        room = len(pool) if max_rows is None else min(len(pool), max_rows - len(survivors))
        if room <= 0:
            break
        batch = [{**item, "mutation": rng.choice(names)} for item in pool[:room]]
        waiting = pool[room:]  # not attempted this round (max_rows): they stay in the pool
        attempts += len(batch)
        evolved = run(evolve_task, batch, batch_size=batch_size, cache=cache, progress=progress,
                      desc=f"evol round {round_no}")
        evolved.report.step = f"round {round_no}: evolve"
        failed = [{"parent": r["instruction"], "origin": r["origin"], "mutation": r["mutation"], "round": round_no,
                   "instruction": None, "reason": r["reason"]} for r in evolved.dropped.to_list()] \
            if len(evolved.dropped) else []
        candidates = [{"instruction": r["evolved_instruction"], "parent": r["instruction"], "origin": r["origin"],
                       "mutation": r["mutation"], "round": round_no}
                      for r in (evolved.dataset.to_list() if len(evolved.dataset) else [])]
        t = time.perf_counter()
        ruled: List[Row] = []
        after_rules = []
        for row in candidates:
            reason = evolution_elimination_reason(row["parent"], row["instruction"])
            (ruled.append({**row, "reason": reason}) if reason else after_rules.append(row))
        rules_report = Report(f"round {round_no}: rules (instruction)", rows_in=len(candidates),
                              rows_out=len(after_rules), dropped=count_reasons(ruled), seconds=round(time.perf_counter() - t, 3))
        judged_out: List[Row] = []
        after_judge = after_rules
        if judge_task is not None:
            verdicts = run(judge_task, [{"parent": r["parent"], "evolved": r["instruction"]} for r in after_rules],
                           batch_size=batch_size, cache=cache, progress=False, desc=f"round {round_no}: judge")
            verdict_rows = verdicts.dataset.to_list() if len(verdicts.dataset) else []
            answer = {(v["parent"], v["evolved"]): _judge_verdict(v.get("generation")) for v in verdict_rows}
            after_judge = []
            for row in after_rules:
                verdict = answer.get((row["parent"], row["instruction"]))
                if verdict == "not equal":
                    after_judge.append(row)
                else:
                    judged_out.append({**row, "reason": "no_information_gain" if verdict == "equal"
                                       else "judge_unparsed"})
            judge_report = Report(f"round {round_no}: judge (information gain)", rows_in=len(after_rules),
                                  rows_out=len(after_judge), dropped=count_reasons(judged_out),
                                  input_tokens=verdicts.report.input_tokens,
                                  output_tokens=verdicts.report.output_tokens, seconds=verdicts.report.seconds,
                                  cached_rows=verdicts.report.cached_rows, model=verdicts.report.model)
        answered = generate_responses(after_judge, llm=response_llm, batch_size=batch_size, cache=cache,
                                      progress=False, desc=f"round {round_no}: responses")
        no_answer = [{k: v for k, v in r.items() if k not in ("model_name", "raw_output", "error")}
                     for r in (answered.dropped.to_list() if len(answered.dropped) else [])]
        t = time.perf_counter()
        answered_rows = answered.dataset.to_list() if len(answered.dataset) else []
        final: List[Row] = []
        response_out: List[Row] = []
        for row in answered_rows:
            row = {k: v for k, v in row.items() if k != "model_name"}
            reason = evolution_elimination_reason(row["parent"], row["instruction"], row.get("response") or "")
            (response_out.append({**row, "reason": reason}) if reason else final.append(row))
        response_report = Report(f"round {round_no}: rules (response)", rows_in=len(answered_rows),
                                 rows_out=len(final), dropped=count_reasons(response_out),
                                 seconds=round(time.perf_counter() - t, 3))
        answered.report.step = f"round {round_no}: responses"
        stages += [evolved.report, rules_report] + ([judge_report] if judge_task is not None else []) + \
            [answered.report, response_report]
        round_failed = failed + ruled + judged_out + no_answer + response_out
        dropped.extend(round_failed)
        survivors.extend(final)
        # the pool: successful evolutions replace their parents; failed ones leave the parent for another try
        back = [{"instruction": r["parent"], "origin": r["origin"]} for r in round_failed]
        pool = [{"instruction": r["instruction"], "origin": r["origin"]} for r in final] + back + waiting
    return _staged("evol_instruct", stages, kept=survivors, dropped=dropped, rows_in=attempts, started=started,
                   model=model_id, params={"seeds": list(seeds), "rounds": rounds, "mutations": names})
