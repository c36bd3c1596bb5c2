"""Self-Instruct (Wang et al. 2022): grow a pool of instructions from a few seeds, round after round, with the paper's
filters.

distilabel's ``SelfInstruct`` task is only the prompt (and it splits the answer on newlines, numbering kept). The
paper's loop is here: each prompt shows 8 instructions, 6 seeds and 2 from the generated pool (fewer from the pool
while it is small, the gap filled with seeds, as in the authors' code), shuffled; a new instruction is kept only if
its ROUGE-L F (no stemming) against the seeds and the pool is <= 0.7, and it passes the rule filters
(:func:`instruction_rule`); before those, one check of ours drops an instruction that copies the prompt's own lines
(:func:`copies_prompt`, which small chat models do). Every removed candidate is counted with its reason.

The paper's second stage, input/output instances per instruction (output-first for classification tasks), with its
clean-up, is :func:`self_instruct_instances`.

    >>> r = filter_instructions(["Write a poem about the sea.", "Write a poem about the sea, please."],
    ...                         references=["Explain how tides work."])
    >>> r.report.dropped, [row["instruction"] for row in r.rows]
    ({'too_similar': 1}, ['Write a poem about the sea.'])
"""

from __future__ import annotations

import random
import re
import string
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

from smolsynth.arguments import check_number, check_texts
from smolsynth.formats import INSTRUCTION
from smolsynth.rows import Result, Row, as_rows, from_steps, partition

__all__ = ["BOOTSTRAP_HEADER", "CLASSIFICATION_PROMPT", "INPUT_FIRST_PROMPT", "OUTPUT_FIRST_PROMPT",
           "SELF_INSTRUCT_BLOCKLIST", "bootstrap_context", "clean_instances", "copies_prompt", "filter_instructions",
           "instruction_rule", "parse_instances", "prompt_lines", "rouge_l", "self_instruct", "self_instruct_instances",
           "strip_numbering"]

SELF_INSTRUCT_BLOCKLIST: Tuple[str, ...] = ("image", "images", "graph", "graphs", "picture", "pictures", "file",
                                            "files", "map", "maps", "draw", "plot", "go to")
"""Self-Instruct drops instructions that mention these (a text model cannot see or produce them)."""

BOOTSTRAP_HEADER = "Examples of queries this application receives (write new, different ones):"
"""The line above the example instructions in every Self-Instruct prompt's context (the header the model sees)."""

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


def filter_instructions(candidates: Any, *, references: Sequence[str] = (), column: str = INSTRUCTION,
                        rouge_threshold: float = 0.7, min_words: int = 4, max_words: int = 150,
                        blocklist: Sequence[str] = SELF_INSTRUCT_BLOCKLIST, step: str = "filter") -> Result:
    """Self-Instruct's filters, in the paper's order: the rules of :func:`instruction_rule`, then novelty.

    A candidate is kept only if its ROUGE-L F against every reference (seeds and the pool so far) and every candidate
    kept before it is ``<= rouge_threshold``; otherwise it is dropped as ``too_similar``, with ``max_rouge_l`` and
    ``most_similar`` saying against what. Kept rows get ``max_rouge_l`` and ``most_similar`` too. ``candidates`` is a
    list of strings or rows with ``column``. ROUGE-L costs one comparison per (candidate, reference) pair.
    """
    check_number("rouge_threshold", rouge_threshold, minimum=0.0, maximum=1.0)
    check_number("min_words", min_words, minimum=0, integer=True)
    check_number("max_words", max_words, minimum=1, integer=True)
    if isinstance(candidates, (list, tuple)) and all(isinstance(c, str) for c in candidates):
        rows = [{column: c} for c in candidates]
    else:
        rows = as_rows(candidates, argument="candidates")
    if isinstance(references, str) or references is None:
        raise TypeError(f"references={references!r}: pass a list of strings (the seeds and the pool so far), or [].")
    pool = check_texts("references", list(references), minimum=0)

    def novel(row: Row) -> Any:
        text = row.get(column)
        if not isinstance(text, str):
            return "empty"
        reason = instruction_rule(text, min_words=min_words, max_words=max_words, blocklist=blocklist)
        if reason:
            return reason
        best, closest = 0.0, None
        for other in pool:
            score = rouge_l(other, text)
            if score > best:
                best, closest = score, other
        out = {**row, column: text.strip(), "max_rouge_l": round(best, 4), "most_similar": closest}
        if best > rouge_threshold + 1e-9:  # 0.7 exactly is kept (floating point: 0.7000000000000001)
            return "too_similar", out
        pool.append(text.strip())
        return None, out

    return partition(rows, novel, step=step)


def prompt_lines(task: Any) -> List[str]:
    """The sentences of a Self-Instruct task's own prompt (its task description and criteria, without the markdown
    headers and the context), which a generated instruction must not copy.

    Measured on SmolLM2-135M: 4 of the 8 instructions notebook 01 kept were the prompt's own lines ("Develop 5 user
    queries that can be received by the given AI application ...") before this check.
    """
    if getattr(task, "_template", None) is None:  # distilabel reads its prompt template in load()
        task.load()
    text = task.format_input({"input": ""})[0]["content"]
    return [line.strip() for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#") and line.strip() != task.application_description]


def copies_prompt(text: str, lines: Sequence[str], threshold: float = 0.5) -> Optional[str]:
    """The prompt line ``text`` copies (ROUGE-L F above ``threshold``), or None.

    >>> copies_prompt("Develop 5 user queries for the AI application.", ["Develop 5 user queries that can be "
    ...               "received by the given AI application and applicable to the provided context."])
    'Develop 5 user queries that can be received by the given AI application and applicable to the provided context.'
    >>> copies_prompt("Name three rivers in Spain.", ["Design queries to be self-contained and standalone."]) is None
    True
    """
    best, closest = threshold, None
    for line in lines:
        score = rouge_l(line, text)
        if score > best:
            best, closest = score, line
    return closest


def _split_instructions(rows: List[Row], round_no: int) -> List[Row]:
    """One row per instruction of distilabel's SelfInstruct output, numbering stripped."""
    return [{INSTRUCTION: strip_numbering(text), "raw": text, "context": row.get("input"), "round": round_no}
            for row in rows for text in row.get("instructions") or []]


def bootstrap_context(examples: Sequence[str]) -> str:
    """The context of one Self-Instruct prompt, exactly as :func:`self_instruct` sends it: :data:`BOOTSTRAP_HEADER`,
    then one example instruction per line. distilabel's ``SelfInstruct`` task puts it into its prompt.

    >>> print(bootstrap_context(["Name a bird.", "Sort these numbers: 3, 1, 2."]))
    Examples of queries this application receives (write new, different ones):
    Name a bird.
    Sort these numbers: 3, 1, 2.
    """
    return BOOTSTRAP_HEADER + "\n" + "\n".join(examples)


def _contexts(seeds: Sequence[str], pool: Sequence[str], rng: random.Random, n: int, seed_examples: int,
              pool_examples: int) -> List[str]:
    """``n`` prompt contexts: ``pool_examples`` pool instructions (fewer while the pool is small) and seeds up to
    ``seed_examples + pool_examples`` in all, shuffled (:func:`bootstrap_context`)."""
    contexts = []
    for _ in range(n):
        from_pool = rng.sample(list(pool), min(pool_examples, len(pool)))
        n_seeds = min(len(seeds), seed_examples + pool_examples - len(from_pool))
        examples = rng.sample(list(seeds), n_seeds) + from_pool
        rng.shuffle(examples)
        contexts.append(bootstrap_context(examples))
    return contexts


def self_instruct(seeds: Sequence[str], *, rounds: int = 2, prompts_per_round: int = 8, num_instructions: int = 5,
                  seed_examples: int = 6, pool_examples: int = 2, max_instructions: Optional[int] = None,
                  model: Optional[str] = None, llm: Any = None, application_description: str = "AI assistant",
                  criteria: Optional[str] = None, rouge_threshold: float = 0.7, max_new_tokens: int = 256,
                  temperature: float = 0.7, top_p: float = 1.0, presence_penalty: float = 0.0, seed: int = 0,
                  batch_size: Optional[int] = None, cache: bool = True, progress: bool = True,
                  allow_truncated: bool = False) -> Result:
    """The Self-Instruct paper's bootstrap loop, with distilabel's ``SelfInstruct`` prompt.

    Each round builds ``prompts_per_round`` prompts; each shows ``seed_examples`` seed instructions and
    ``pool_examples`` generated ones (fewer while the pool is small), shuffled, as the prompt's context. The model
    writes ``num_instructions`` new ones per prompt; they are split into rows, numbering stripped, and filtered
    (:func:`copies_prompt`: an instruction that copies the prompt's own words is dropped as ``copies_prompt``; then
    :func:`filter_instructions`: rules, then ROUGE-L against the seeds and the whole pool). Kept instructions join the
    pool for the next round. With ``max_instructions`` the loop stops once the pool has that many; extra ones are
    dropped as ``over_max``. The paper sampled GPT-3 at temperature 0.7, ``top_p`` 0.5 and a presence penalty of 2
    (``presence_penalty=2.0, top_p=0.5`` reproduces that); the defaults here keep ``top_p`` at 1.0 and the presence
    penalty off: on SmolLM2-135M the paper's settings kept 11 instructions where ours kept 32, most of them
    sentences about the application (``benchmarks/README.md``).

    Returns a :class:`~smolsynth.rows.Result`: rows of the generated pool (``instruction``, ``round``,
    ``max_rouge_l``, ``most_similar``, ``context``, ``raw``), every removed candidate with its reason in
    ``.dropped_rows``, two reports per round in ``.steps`` (generation, filter), and ``.params["seeds"]``.

    >>> result = self_instruct(SEEDS, rounds=2, prompts_per_round=4, model="smolsynth/tiny")  # doctest: +SKIP
    >>> result.funnel  # doctest: +SKIP
    """
    from smolsynth.generation import llm_for
    from smolsynth.runner import run
    from smolsynth.verbosity import import_distilabel, quiet_distilabel

    seeds = check_texts("seeds", seeds)
    for name, value in (("rounds", rounds), ("prompts_per_round", prompts_per_round),
                        ("num_instructions", num_instructions), ("seed_examples", seed_examples),
                        ("max_new_tokens", max_new_tokens)):
        check_number(name, value, minimum=1, integer=True)
    check_number("pool_examples", pool_examples, minimum=0, integer=True)
    check_number("max_instructions", max_instructions, minimum=1, integer=True, allow_none=True)
    check_number("temperature", temperature, minimum=0.0, maximum=5.0)
    check_number("top_p", top_p, minimum=0.0, maximum=1.0, exclusive_minimum=True)
    check_number("presence_penalty", presence_penalty, minimum=-2.0, maximum=2.0)
    check_number("rouge_threshold", rouge_threshold, minimum=0.0, maximum=1.0)
    started = time.perf_counter()
    rng = random.Random(seed)
    sampling = {"top_p": top_p} if top_p != 1.0 else {}
    if presence_penalty:
        sampling["presence_penalty"] = presence_penalty  # only when set: the cache key of default runs is unchanged
    llm = llm_for(model, llm, seed=seed, max_new_tokens=max_new_tokens, temperature=temperature, **sampling)
    kwargs: Dict[str, Any] = {"num_instructions": num_instructions, "application_description": application_description}
    if criteria is not None:
        kwargs["criteria_for_query_generation"] = criteria
    with quiet_distilabel():
        task = import_distilabel("distilabel.steps.tasks").SelfInstruct(llm=llm, name="self_instruct", **kwargs)
    lines = prompt_lines(task)
    pool: List[Row] = []
    dropped: List[Row] = []
    steps = []
    candidates_total = 0
    for round_no in range(1, rounds + 1):
        if max_instructions is not None and len(pool) >= max_instructions:
            break
        prompts = [{"input": context} for context in _contexts(
            seeds, [p[INSTRUCTION] for p in pool], rng, prompts_per_round, seed_examples, pool_examples)]
        generated = run(task, prompts, batch_size=batch_size, cache=cache, progress=progress,
                        desc=f"self_instruct round {round_no}", allow_truncated=allow_truncated)
        generated.report.step = f"round {round_no}: generate"
        dropped.extend({**r, "round": round_no} for r in generated.dropped_rows)
        candidates = _split_instructions(generated.rows, round_no)
        candidates_total += len(candidates) + generated.report.dropped_total
        own = partition(candidates, lambda r: (None, r) if not (line := copies_prompt(r[INSTRUCTION], lines)) else (
            "copies_prompt", {**r, "most_similar": line}), step=f"round {round_no}: copies the prompt")
        dropped.extend(own.dropped_rows)
        filtered = filter_instructions(own.rows, references=seeds + [p[INSTRUCTION] for p in pool],
                                       rouge_threshold=rouge_threshold, step=f"round {round_no}: filter")
        new = filtered.rows
        if max_instructions is not None and len(pool) + len(new) > max_instructions:
            room = max_instructions - len(pool)
            dropped.extend({**r, "reason": "over_max"} for r in new[room:])
            filtered.report.dropped = {**filtered.report.dropped, "over_max": len(new) - room}
            filtered.report.rows_out = room
            new = new[:room]
        pool.extend(new)
        dropped.extend(filtered.dropped_rows)
        steps += [generated.report, own.report, filtered.report]
    return from_steps("self_instruct", steps, rows=pool, dropped_rows=dropped, rows_in=candidates_total,
                      started=started, model=getattr(llm, "model_name", None), params={"seeds": list(seeds)})


# ------------------------------------------------------------------------------------------------------ instances
CLASSIFICATION_PROMPT = """Can the following task be regarded as a classification task with finite output labels?

Task: Decide whether a product review is positive or negative.
Is it classification? Yes

Task: Write a short poem about autumn leaves.
Is it classification? No

Task: Tell me if this sentence contains a spelling mistake.
Is it classification? Yes

Task: Explain how a refrigerator keeps food cold.
Is it classification? No

Task: {{ instruction }}
Is it classification?"""
"""Self-Instruct's first question about each instruction (our examples, the paper's question), answered Yes or No."""

INPUT_FIRST_PROMPT = """Come up with examples for the following task. Each example has an input and the output that \
answers the task for that input. If the task needs no input, write "Input: none" and the output directly.

Task: {{ instruction }}"""
"""Self-Instruct's input-first instance prompt (our wording): for tasks that are not classification."""

OUTPUT_FIRST_PROMPT = """Given the classification task below, write examples: first a possible class label, then an \
input that belongs to that label. Use a different label in each example.

Task: {{ instruction }}"""
"""Self-Instruct's output-first instance prompt (our wording): the label first, so the inputs do not all fall in the
most common class (the paper's reason for it)."""

_LINE = r"[^\x00-\x1f]+"  # one line of text: no newline, no control character


def _instance_regex(order: str, n: int) -> str:
    first, second = ("Input", "Output") if order == "input-first" else ("Class label", "Input")
    one = f"{first}: {_LINE}\\n{second}: {_LINE}"
    return one if n == 1 else f"{one}(?:\\n\\n{one}){{0,{n - 1}}}"


_INSTANCE = re.compile(r"^(?P<a>Input|Class label): (?P<x>.*)\n(?P<b>Output|Input): (?P<y>.*)$", re.MULTILINE)


def parse_instances(text: str, order: str) -> List[Dict[str, str]]:
    """The instances in one instance-generation answer, as ``{"input", "output"}`` dicts (for output-first answers
    the class label is the output). "Input: none" becomes an empty input.

    >>> parse_instances("Input: 2 + 2\\nOutput: 4\\n\\nInput: 3 + 5\\nOutput: 8", "input-first")
    [{'input': '2 + 2', 'output': '4'}, {'input': '3 + 5', 'output': '8'}]
    >>> parse_instances("Class label: positive\\nInput: I loved it.", "output-first")
    [{'input': 'I loved it.', 'output': 'positive'}]
    """
    out = []
    for m in _INSTANCE.finditer(text or ""):
        a, b = m.group("x").strip(), m.group("y").strip()
        given, answer = (a, b) if order == "input-first" else (b, a)
        out.append({"input": "" if given.lower() in ("none", "<noinput>", "n/a") else given, "output": answer})
    return out


def clean_instances(rows: Sequence[Row]) -> Result:
    """Self-Instruct's clean-up of generated instances (the authors' ``prepare_for_finetuning``), each drop counted.

    A task is dropped whole (``conflicting_outputs``) when one input appears with two different outputs; an instance
    is dropped when its output is empty (``empty_output``), its input equals its output (``input_equals_output``),
    its input or output ends with ":" (``ends_with_colon``), or it repeats an instance kept before
    (``duplicate_instance``).

    >>> r = clean_instances([{"instruction": "Add.", "input": "1+1", "output": "2"},
    ...                      {"instruction": "Add.", "input": "1+1", "output": "2"},
    ...                      {"instruction": "Echo.", "input": "hi", "output": "hi"}])
    >>> [x["output"] for x in r.rows], r.report.dropped
    (['2'], {'duplicate_instance': 1, 'input_equals_output': 1})
    """
    outputs: Dict[Tuple[str, str], set] = {}
    for row in rows:
        outputs.setdefault((row[INSTRUCTION], row["input"].strip()), set()).add(row["output"].strip())
    conflicting = {task for (task, _), answers in outputs.items() if len(answers) > 1}
    seen: set = set()

    def check(row: Row) -> Optional[str]:
        given, answer = row["input"].strip(), row["output"].strip()
        if row[INSTRUCTION] in conflicting:
            return "conflicting_outputs"
        if not answer:
            return "empty_output"
        if given and given == answer:
            return "input_equals_output"
        if given.endswith(":") or answer.endswith(":"):
            return "ends_with_colon"
        key = (row[INSTRUCTION], given, answer)
        if key in seen:
            return "duplicate_instance"
        seen.add(key)
        return None

    return partition(rows, check, step="clean instances")


def self_instruct_instances(instructions: Any, *, instances: int = 2, model: Optional[str] = None, llm: Any = None,
                            max_new_tokens: int = 256, presence_penalty: float = 1.5, seed: int = 0,
                            batch_size: Optional[int] = None, cache: bool = True, progress: bool = True) -> Result:
    """Self-Instruct's second stage: input/output instances for each instruction, then the paper's clean-up.

    1. The model answers :data:`CLASSIFICATION_PROMPT` for each instruction, greedily, constrained to ``Yes`` or
       ``No``.
    2. Classification tasks get :data:`OUTPUT_FIRST_PROMPT` (a class label, then an input for it), the others
       :data:`INPUT_FIRST_PROMPT` (an input, then its output), as in the paper. Decoding is greedy with a presence
       penalty (the paper: temperature 0, presence penalty 1.5), constrained to up to ``instances`` examples in the
       prompt's format, so every answer parses; an answer cut by ``max_new_tokens`` is dropped (``truncated``).
    3. :func:`clean_instances`.

    ``instructions`` is a list of strings or rows with an ``instruction`` column (e.g. ``self_instruct(...).rows``).
    Returns a :class:`~smolsynth.rows.Result`: one row per kept instance (``instruction``, ``input``, ``output``,
    ``is_classification``, ``order``), every dropped task or instance with its reason. The report counts candidates:
    an instruction that wrote no instance counts once, each written instance once
    (``.params["instructions"]`` is the number of instructions).

    >>> r = self_instruct_instances(["Sort these words alphabetically.", "Is this email spam?"])  # doctest: +SKIP
    """
    from smolsynth.gates import truncated
    from smolsynth.llm import LocalLLM
    from smolsynth.runner import DISTILABEL_METADATA, run
    from smolsynth.verbosity import import_distilabel, quiet_distilabel

    check_number("instances", instances, minimum=1, maximum=5, integer=True)
    check_number("max_new_tokens", max_new_tokens, minimum=16, integer=True)
    check_number("presence_penalty", presence_penalty, minimum=-2.0, maximum=2.0)
    if isinstance(instructions, (list, tuple)) and all(isinstance(i, str) for i in instructions):
        rows = [{INSTRUCTION: i} for i in check_texts("instructions", list(instructions))]
    else:
        rows = as_rows(instructions, argument="instructions")
        if rows and INSTRUCTION not in rows[0]:
            raise ValueError(f"instructions: the rows have no {INSTRUCTION!r} column (columns: {sorted(rows[0])}); "
                             "pass a list of strings or the rows self_instruct() returned.")
    started = time.perf_counter()
    tasks = import_distilabel("distilabel.steps.tasks")
    asked = [{INSTRUCTION: r[INSTRUCTION]} for r in rows]
    with quiet_distilabel():
        judge_llm = llm or LocalLLM(model, seed=seed, structured_output={"format": "regex", "schema": "(Yes|No)"},
                                    generation_kwargs={"max_new_tokens": 4, "temperature": 0.0})
        classify = tasks.TextGeneration(llm=judge_llm, template=CLASSIFICATION_PROMPT, columns=[INSTRUCTION],
                                        name="is_classification", output_mappings={"generation": "answer"})
    verdicts = run(classify, asked, batch_size=batch_size, cache=cache, progress=progress,
                   desc="classification?", allow_truncated=True)
    verdicts.report.step = "is it classification?"
    by_order: Dict[str, List[Row]] = {"input-first": [], "output-first": []}
    unparsed = []
    for r in verdicts.rows:
        answer = (r.get("answer") or "").strip()
        if answer not in ("Yes", "No"):
            unparsed.append({INSTRUCTION: r[INSTRUCTION], "reason": "judge_unparsed"})
            continue
        by_order["output-first" if answer == "Yes" else "input-first"].append({INSTRUCTION: r[INSTRUCTION]})
    steps = [verdicts.report]
    dropped: List[Row] = [{INSTRUCTION: r[INSTRUCTION], "reason": r["reason"]} for r in verdicts.dropped_rows]
    dropped += unparsed
    made: List[Row] = []
    model_id = getattr(judge_llm, "model_name", None) or model
    for order, todo in by_order.items():
        if not todo:
            continue
        with quiet_distilabel():
            writer = llm or LocalLLM(model_id, seed=seed, structured_output={
                "format": "regex", "schema": _instance_regex(order, instances)}, generation_kwargs={
                "max_new_tokens": max_new_tokens, "temperature": 0.0, "presence_penalty": presence_penalty})
            task = tasks.TextGeneration(llm=writer, name=f"instances_{order.replace('-', '_')}",
                                        template=INPUT_FIRST_PROMPT if order == "input-first" else OUTPUT_FIRST_PROMPT,
                                        columns=[INSTRUCTION], output_mappings={"generation": "answer"})
        written = run(task, todo, batch_size=batch_size, cache=cache, progress=progress, desc=f"instances ({order})",
                      keep_metadata=True)
        written.report.step = f"instances ({order})"
        steps.append(written.report)
        dropped += [{INSTRUCTION: r[INSTRUCTION], "order": order, "reason": r["reason"]} for r in written.dropped_rows]
        for r in written.rows:
            if truncated(r.get(DISTILABEL_METADATA), reasons=("closed",)):  # closed by the engine: may be cut
                dropped.append({INSTRUCTION: r[INSTRUCTION], "order": order, "raw": r.get("answer"),
                                "reason": "truncated"})
                continue
            found = parse_instances(r.get("answer") or "", order)
            if not found:
                dropped.append({INSTRUCTION: r[INSTRUCTION], "order": order, "raw": r.get("answer"),
                                "reason": "unparsed_output"})
            made += [{INSTRUCTION: r[INSTRUCTION], **i, "is_classification": order == "output-first", "order": order}
                     for i in found]
    cleaned = clean_instances(made)
    steps.append(cleaned.report)
    # counted in candidates: each instruction that wrote no instance is one, each instance written is one
    return from_steps("self_instruct_instances", steps, rows=cleaned.rows, dropped_rows=dropped + cleaned.dropped_rows,
                      rows_in=len(dropped) + len(made), started=started, model=model_id,
                      params={"instances": instances, "instructions": len(rows)})
