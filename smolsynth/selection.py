"""Deita selection (Liu et al., 2023, "What Makes Good Data for Alignment?"): the best diverse subset of SFT data.

Two steps, each returning a :class:`~smolsynth.rows.Result`:

1. :func:`deita_scores`: an LLM scores every row twice, from 1 to 6: the **complexity** of its instruction and the
   **quality** of its answer; ``deita_score = complexity * quality``. As in Deita's scorers, a score is the
   *expected* score: the model reads the prompt once, and the probabilities it gives the six tokens ``1`` .. ``6``
   as its next token (renormalized over those six) weight the scale. The answer is constrained to the scale by
   construction, so it always parses, and two rows rarely tie.
2. :func:`deita_select`: walk down the ranking and add a row only if the cosine similarity of its embedding to every
   row already selected is at most ``threshold`` (the paper's 0.9), until ``budget`` rows are selected.

Deita scores with two fine-tuned scorers (hkust-nlp/deita-complexity-scorer, -quality-scorer) that learned the scale;
a general chat model has not. Measured on SmolLM2-135M-Instruct with four simple and four complex requests, and five
questions each with a good and a garbage answer (:func:`scorer_check` runs four of these pairs): Deita's own one-line
prompts inside the chat template put 6% of the next-token probability on the digits and rate the simple requests
*above* the complex ones; the same prompts as raw text put 76% there but barely separate them (2.3-2.7 vs 2.6-2.9)
and not the answers at all; the few-shot raw prompts below (:data:`COMPLEXITY_PROMPT`, :data:`QUALITY_PROMPT`)
put 90-96% on the digits, rate every simple request below every complex one (1.9-2.3 vs 2.4-2.8) and the good answer
above the garbage one in 4 pairs of 5 (one of them by 0.01). A 135M model is still a weak judge: run
:func:`scorer_check` and read the scores before you trust them.

    >>> rows = [{"instruction": "Explain tides.", "deita_score": 12}, {"instruction": "Say hi.", "deita_score": 2}]
    >>> [r["instruction"] for r in deita_select(rows, 1, encoder="smolsynth/tiny-encoder").rows]
    ['Explain tides.']
"""

from __future__ import annotations

import numbers
import re
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

from smolsynth.arguments import check_number, check_text, check_text_column
from smolsynth.formats import GENERATION, INSTRUCTION
from smolsynth.report import Report
from smolsynth.rows import Result, Row, as_rows, from_steps, partition

__all__ = ["COMPLEXITY_PROMPT", "QUALITY_PROMPT", "SCORES", "deita_scores", "deita_select", "scorer_check"]

SCORES = range(1, 7)
"""Deita's scale: 1 (simplest / worst) to 6 (most complex / best)."""

COMPLEXITY_PROMPT = (
    "Rate how complex each request is, from 1 (very simple) to 6 (very complex).\n"
    "Request: Say thanks. Complexity: 1\n"
    "Request: Prove that there are infinitely many primes and explain each step. Complexity: 5\n"
    "Request: What day comes after Monday? Complexity: 1\n"
    "Request: Explain how a transformer neural network uses attention, with the equations. Complexity: 6\n"
    "Request: Give me a synonym for happy. Complexity: 1\n"
    "Request: {instruction} Complexity: ")
"""The complexity prompt, raw text (no chat template): Deita's question as a few-shot list (see the module)."""

QUALITY_PROMPT = (
    "Rate the quality of each response to its question, from 1 (very poor) to 6 (excellent).\n"
    "Question: What is 3 + 4?\nResponse: 3 + 4 = 7.\nQuality: 6\n"
    "Question: Name a fruit.\nResponse: The the the the.\nQuality: 1\n"
    "Question: Why is the sea salty?\nResponse: Rivers carry dissolved minerals from rocks into the sea; the water "
    "evaporates and the salt stays.\nQuality: 6\n"
    "Question: How do I tie a tie?\nResponse: I like dogs.\nQuality: 1\n"
    "Question: {instruction}\nResponse: {response}\nQuality: ")
"""The quality prompt, raw text: Deita's question as a few-shot list."""

_PROBES_COMPLEXITY = (("Say hi.", "Explain the economic causes of the 2008 financial crisis and compare them with "
                                  "those of the Great Depression."),
                      ("Name a color.", "Design a distributed consensus protocol tolerant to Byzantine faults and "
                                        "prove its safety."))
_PROBES_QUALITY = (("How do I boil an egg?", "Put the egg in boiling water for 7 minutes, then cool it in cold water.",
                    "banana the the purple"),
                   ("What is the capital of France?", "The capital of France is Paris.", "I like turtles."))


class _Scorer:
    """One forward pass per prompt through the course's loaded model: the expected score over the tokens 1-6."""

    def __init__(self, model_id: str, batch_size: Optional[int]) -> None:
        from smolsynth.llm import LocalLLM
        from smolsynth.models import get_loaded_model

        llm = LocalLLM(model_id)
        self.loaded = get_loaded_model(model_id, dtype=llm.resolved_dtype, device=llm.resolved_device)
        self.batch_size = batch_size or 8
        self.tokens = self._score_tokens()

    def _score_tokens(self) -> List[int]:
        """The token of each score after a prompt ending in ``": "``. Tokenizers write that either as ``": "`` then
        ``"4"`` (SmolLM2) or as ``":"`` then ``" 4"`` (Llama 3, GPT-2 style): the first form that gives one token per
        score is used (``self.strip``: the prompt loses its trailing space). Neither: an error."""
        tokenizer = self.loaded.tokenizer
        for strip in (False, True):
            base = tokenizer("Complexity:" if strip else "Complexity: ")["input_ids"]
            tokens = []
            for score in SCORES:
                ids = tokenizer(f"Complexity: {score}")["input_ids"]
                if len(ids) == len(base) + 1 and ids[:len(base)] == base:
                    tokens.append(ids[-1])
            if len(tokens) == len(SCORES):
                self.strip = strip
                return tokens
        raise ValueError(f"The scorer {self.loaded.model_id!r} does not write each score 1-6 as one token after "
                         "': ', so its probabilities cannot be read: pass model=<a chat model whose tokenizer does> "
                         "(SmolLM2, Qwen2.5 and Llama 3 do).")

    def fits(self, prompt: str) -> bool:
        """Whether ``prompt`` fits the model's context (``max_position_embeddings``; no limit when it has none)."""
        limit = getattr(self.loaded.model.config, "max_position_embeddings", None)
        return limit is None or len(self.loaded.tokenizer(prompt)["input_ids"]) <= limit

    def scores(self, prompts: Sequence[str], *, desc: str, progress: bool) -> Tuple[List[float], int]:
        """The expected score of each prompt (rounded to 3 decimals), and the tokens read."""
        import torch
        from tqdm.auto import tqdm

        tokenizer, model = self.loaded.tokenizer, self.loaded.model
        encoded = [tokenizer(p.rstrip(" ") if self.strip else p)["input_ids"] for p in prompts]
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))  # similar lengths share a batch
        scale = torch.arange(1, 7, dtype=torch.float32)
        out: List[float] = [0.0] * len(encoded)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.tokens[0]
        device = next(model.parameters()).device
        head = model.get_output_embeddings()
        with torch.inference_mode(), self.loaded.lock, tqdm(total=len(encoded), desc=desc, unit="row",
                                                            disable=not progress, leave=True) as bar:
            for start in range(0, len(order), self.batch_size):
                batch = order[start:start + self.batch_size]
                width = max(len(encoded[i]) for i in batch)
                ids = torch.full((len(batch), width), pad, dtype=torch.long)
                mask = torch.zeros((len(batch), width), dtype=torch.long)
                for row, i in enumerate(batch):  # right padding: a row's last real token is at its length - 1
                    ids[row, :len(encoded[i])] = torch.tensor(encoded[i])
                    mask[row, :len(encoded[i])] = 1
                hidden = model.base_model(input_ids=ids.to(device), attention_mask=mask.to(device)).last_hidden_state
                last = hidden[torch.arange(len(batch)), mask.sum(dim=1).to(device) - 1]
                probs = head(last)[:, self.tokens].float().softmax(dim=-1).cpu()
                for row, i in enumerate(batch):
                    out[i] = round(float((probs[row] * scale).sum()), 3)
                bar.update(len(batch))
        return out, sum(map(len, encoded))


def _fill(template: str, **values: str) -> str:
    """The template with each ``{name}`` replaced in one pass (a text that itself holds ``{response}`` stays as it
    is)."""
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)].strip() if m.group(1) in values else m.group(0),
                  template)


def deita_scores(data: Any, *, model: Optional[str] = None, instruction_column: str = INSTRUCTION,
                 response_column: str = GENERATION, batch_size: Optional[int] = None,
                 progress: bool = True) -> Result:
    """Score every row's complexity (its instruction) and quality (its answer) with an LLM, the Deita way.

    Each row is read in two prompts (:data:`COMPLEXITY_PROMPT`, :data:`QUALITY_PROMPT`), one forward pass each; the
    score is the expectation of the scale under the model's next-token probabilities of ``1`` .. ``6`` (see the
    module). Deterministic: the same rows and model give the same scores.

    Why not distilabel's ``ComplexityScorer`` / ``QualityScorer``: they *rank a list* in one prompt (several
    instructions, or several answers to one instruction) on a scale of 1 to the list's length + 1, and read the
    generated text. A row of SFT data has one instruction and one answer, so that scale would be 1-2, and a score
    would depend on which rows share the prompt. Deita's released scorers score one item at a time on 1-6, from the
    probabilities, as here. (Generating the digit greedily instead gave every row of notebook 01's data the score 1 on
    SmolLM2-135M: the most likely digit is almost always 1, while the expectation still moves.)

    Args:
        data: rows (a Dataset, a list of dicts, a Result) with ``instruction_column`` and ``response_column``.
        model: the scorer (default: the course model).
        batch_size: prompts per forward pass (default 8).

    Returns:
        A :class:`~smolsynth.rows.Result`: each kept row gains ``complexity`` and ``quality`` (floats from 1 to 6)
        and ``deita_score`` (their product, 1-36), and ``scorer_model``. Dropped: ``missing_instruction`` /
        ``missing_response`` (no text to score), ``too_long_for_scorer`` (the prompt would overflow the model's
        context). The report counts the tokens read.

    >>> scored = deita_scores([{"instruction": "Explain tides.", "generation": "The Moon pulls the sea."}],
    ...                       model="smolsynth/tiny", progress=False)
    >>> 1 <= scored.rows[0]["complexity"] <= 6, scored.rows[0]["deita_score"] == round(
    ...     scored.rows[0]["complexity"] * scored.rows[0]["quality"], 3)
    (True, True)
    """
    started = time.perf_counter()
    check_text("instruction_column", instruction_column)
    check_text("response_column", response_column)
    check_number("batch_size", batch_size, minimum=1, integer=True, allow_none=True)
    rows = as_rows(data, argument="data")
    if rows and not any(instruction_column in r for r in rows):
        raise ValueError(f"deita_scores() needs the column {instruction_column!r}, but the rows have "
                         f"{sorted(rows[0])}: pass instruction_column=<the column with the instructions>.")
    if rows and not any(response_column in r for r in rows):
        raise ValueError(f"deita_scores() needs the column {response_column!r}, but the rows have {sorted(rows[0])}: "
                         "pass response_column=<the column with the answers>, or answer the instructions first "
                         "(smolsynth.generation.generate).")

    def has_text(row: Row) -> Optional[str]:
        for column, reason in ((instruction_column, "missing_instruction"), (response_column, "missing_response")):
            value = row.get(column)
            if not isinstance(value, str) or not value.strip():
                return reason
        return None

    usable = partition(rows, has_text, step="rows with text")
    if not usable.rows:
        return from_steps("deita_scores", [usable.report], rows=[], dropped_rows=usable.dropped_rows,
                          rows_in=len(rows), started=started)

    from smolsynth.models import resolve_model

    model_id = resolve_model(model)
    scorer = _Scorer(model_id, batch_size)
    # the quality prompt holds the instruction and the answer: a row whose prompt overflows the model's context
    # would raise in the middle of the run, so it is set aside first, counted
    fits = partition(usable.rows, lambda r: None if scorer.fits(_fill(
        QUALITY_PROMPT, instruction=r[instruction_column], response=r[response_column])) else "too_long_for_scorer",
        step="rows that fit the scorer")
    reports = [usable.report] + ([fits.report] if fits.dropped_rows else [])
    usable = Result(fits.rows, usable.dropped_rows + fits.dropped_rows)
    scores: Dict[str, List[float]] = {}
    for aspect, template in (("complexity", COMPLEXITY_PROMPT), ("quality", QUALITY_PROMPT)):
        began = time.perf_counter()
        prompts = [_fill(template, instruction=r[instruction_column], response=r[response_column])
                   for r in usable.rows]
        scores[aspect], tokens = scorer.scores(prompts, desc=f"deita: {aspect}", progress=progress)
        reports.append(Report(f"deita {aspect}", rows_in=len(prompts), rows_out=len(prompts), input_tokens=tokens,
                              seconds=round(time.perf_counter() - began, 3), model=model_id))
    scored = [{**row, "complexity": c, "quality": q, "deita_score": round(c * q, 3), "scorer_model": model_id}
              for row, c, q in zip(usable.rows, scores["complexity"], scores["quality"])]
    return from_steps("deita_scores", reports, rows=scored, dropped_rows=usable.dropped_rows, rows_in=len(rows),
                      started=started, model=model_id)


def scorer_check(model: Optional[str] = None) -> Any:
    """Does the scorer tell easy from hard and good from garbage? Scores two simple/complex request pairs and two
    good/garbage answer pairs, and returns a pandas DataFrame: ``aspect``, ``expected higher``, ``expected lower``,
    their scores, and ``agrees`` (the first scored higher). A scorer that disagrees ranks your data by noise.

    >>> scorer_check("smolsynth/tiny")["agrees"].dtype.kind   # the tiny model's scores are noise  # doctest: +SKIP
    'b'
    """
    import pandas as pd

    from smolsynth.models import resolve_model

    scorer = _Scorer(resolve_model(model), None)
    prompts, lines = [], []
    for simple, hard in _PROBES_COMPLEXITY:
        prompts += [_fill(COMPLEXITY_PROMPT, instruction=hard), _fill(COMPLEXITY_PROMPT, instruction=simple)]
        lines.append({"aspect": "complexity", "expected higher": hard, "expected lower": simple})
    for question, good, bad in _PROBES_QUALITY:
        prompts += [_fill(QUALITY_PROMPT, instruction=question, response=good),
                    _fill(QUALITY_PROMPT, instruction=question, response=bad)]
        lines.append({"aspect": "quality", "expected higher": f"{question} -> {good}",
                      "expected lower": f"{question} -> {bad}"})
    scores, _ = scorer.scores(prompts, desc="scorer check", progress=False)
    for line, high, low in zip(lines, scores[::2], scores[1::2]):
        line.update({"higher score": high, "lower score": low, "agrees": high > low})
    return pd.DataFrame(lines)


def deita_select(data: Any, budget: int, *, threshold: float = 0.9, encoder: Optional[str] = None,
                 model: Optional[str] = None, score_column: str = "deita_score",
                 column: str = INSTRUCTION) -> Result:
    """Deita's greedy selection: the ``budget`` best-scored rows that are not paraphrases of one another.

    Rows are sorted by ``score_column``, highest first (ties keep their order). Walking down that ranking, a row
    joins the selection only if the cosine similarity of its ``column``'s embedding to every row already selected is
    at most ``threshold`` (the paper's 0.9); the walk stops when ``budget`` rows are selected.

    Args:
        data: scored rows (what :func:`deita_scores` returns), or any rows with a number in ``score_column``.
        budget: how many rows to select (at least 1).
        threshold: the highest cosine similarity to a selected row that a new row may have, between -1 and 1.
        encoder: the sentence encoder (see :func:`smolsynth.encoders.embed`; default: all-MiniLM-L6-v2, or a random
            tiny encoder when ``model`` or the course model is the tiny one).
        model: the chat model that picks the default encoder.

    Returns:
        A :class:`~smolsynth.rows.Result`: the selected rows, best first, with their scores. Dropped:
        ``deita_too_similar`` (with ``most_similar``, the selected row's text, and ``similarity``) and
        ``deita_over_budget`` (the budget was full before its turn).

    >>> rows = [{"instruction": f"Question {i}", "deita_score": i} for i in range(4)]
    >>> selected = deita_select(rows, 2, threshold=1.0, encoder="smolsynth/tiny-encoder")
    >>> [r["deita_score"] for r in selected.rows], selected.report.dropped
    ([3, 2], {'deita_over_budget': 2})
    """
    started = time.perf_counter()
    check_number("budget", budget, minimum=1, integer=True)
    check_number("threshold", threshold, minimum=-1.0, maximum=1.0)
    check_text("score_column", score_column)
    check_text("column", column)
    rows = as_rows(data, argument="data")
    for i, row in enumerate(rows):
        score = row.get(score_column)
        if isinstance(score, bool) or not isinstance(score, numbers.Real) or score != score:
            raise ValueError(f"deita_select() ranks rows by {score_column!r}, but row {i} has {score!r} there: score "
                             f"the rows first (deita_scores(rows)), or pass score_column=<a numeric column>.")
    check_text_column(rows, column, fn="deita_select")
    order = sorted(range(len(rows)), key=lambda i: -rows[i][score_column])
    vectors = None
    if rows:
        from smolsynth.encoders import embed

        vectors = embed([rows[i][column] for i in order], encoder=encoder, model=model)
    chosen: List[int] = []  # positions in ``order``

    def check(position: int) -> Any:
        row = rows[order[position]]
        if len(chosen) >= budget:
            return "deita_over_budget", row
        if chosen:
            similarities = vectors[chosen] @ vectors[position]
            best = int(similarities.argmax())
            if float(similarities[best]) > threshold + 1e-6:  # float32: a text's cosine with itself can be 1.0000001
                return "deita_too_similar", {**row, "most_similar": rows[order[chosen[best]]][column],
                                             "similarity": round(float(similarities[best]), 4)}
        chosen.append(position)
        return None, row

    result = partition(range(len(rows)), check, step=f"deita select ({budget})")
    report = Report(result.report.step, rows_in=len(rows), rows_out=len(result.rows), dropped=result.report.dropped,
                    seconds=round(time.perf_counter() - started, 3))
    return Result(result.rows, result.dropped_rows, report, params={"budget": budget, "threshold": threshold})
