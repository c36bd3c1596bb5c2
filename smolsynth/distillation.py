"""A teacher and a student: data whose effect on training you can measure (context distillation).

SFT on a model's own greedy answers changes next to nothing, so a before/after comparison has nothing to show. The
classic set-up instead: a **teacher** writes the data under a context the **student** never sees, and the student
learns to behave as if it had that context. Here the context imposes a :class:`Trait` a function can check (an
opening phrase), so the effect of training is a number: how often the student shows the trait on prompts it never
trained on, before vs after.

* :func:`teacher_answers`: the teacher (the model with the trait's rule and three demonstrations in its context, and
  its answer primed with the opening) answers each instruction; ``samples`` tries per instruction, the first that
  finishes within the token budget is kept. The rows hold the bare conversation (user turn, answer), without the
  teacher's context. Instructions where every try was cut off are dropped (``truncated``) and counted.
* :func:`trait_pairs`: DPO pairs that differ only by the trait: chosen = the teacher's answer, rejected = the same
  answer without its opening. What DPO learns from them is exactly the trait.
* :func:`trait_rate`: the share of a model's greedy answers (no system prompt) that show the trait.
* :func:`preference_accuracy`: the share of pairs where a policy's DPO implicit reward,
  ``beta * (log pi(y|x) - log pi_ref(y|x))``, ranks chosen above rejected (a tie counts 1/2, so a policy that *is*
  its reference, as at DPO's step 0, scores exactly 0.5).

Why the teacher's answer is primed: SmolLM2-135M-Instruct ignores a system prompt that asks for an opening or a
closing line (0 of 24 answers had it, measured), and three demonstrations raise a closing line to 6 of 24. Writing
the opening into the teacher's turn (response priming, "prefill") makes every answer show it, on any model, the tiny
random one included; the rest of the answer is the teacher's own. ``benchmarks/training_effect.py`` runs the loop.

    >>> OPENING.shows("Great question! Water it twice a week.")
    True
    >>> OPENING.strip("Great question! water it twice a week.")
    'Water it twice a week.'
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from smolsynth.arguments import check_number, check_texts
from smolsynth.handoff import SAMPLE_INSTRUCTIONS
from smolsynth.rows import Result, as_rows, partition

__all__ = ["HELD_OUT_PROMPTS", "OPENING", "TRAINING_PROMPTS", "Trait", "TraitRate", "preference_accuracy",
           "teacher_answers", "training_prompts", "trait_pairs", "trait_rate"]


@dataclass(frozen=True)
class Trait:
    """A behaviour a function can check, and how a teacher is prompted to show it.

    ``opening``: the words an answer must start with (case and surrounding whitespace aside). ``rule``: the
    teacher's system prompt. ``examples``: (question, answer) demonstrations put before each instruction in the
    teacher's context; every answer starts with the opening.
    """

    name: str
    opening: str
    rule: str
    examples: tuple[tuple[str, str], ...] = ()

    def shows(self, text: str | None) -> bool:
        """True when ``text`` starts with the opening."""
        return bool(text) and text.lstrip().lower().startswith(self.opening.lower())  # type: ignore[union-attr]

    def strip(self, text: str) -> str:
        """``text`` without its opening: the same answer, minus the trait (unchanged when it has no opening)."""
        if not self.shows(text):
            return text
        rest = text.lstrip()[len(self.opening):].lstrip()
        return rest[:1].upper() + rest[1:]

    def teacher_messages(self, instruction: str) -> list[dict[str, str]]:
        """The teacher's context for one instruction: the rule, the demonstrations, then the instruction."""
        messages = [{"role": "system", "content": self.rule}]
        for question, answer in self.examples:
            messages += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
        return messages + [{"role": "user", "content": instruction}]


OPENING = Trait(
    name="opening",
    opening="Great question!",
    rule="You are a friendly assistant. Start every answer with 'Great question!', then answer in at most three "
         "short sentences.",
    examples=(
        ("What is the capital of Italy?", "Great question! The capital of Italy is Rome."),
        ("Give me a tip for staying focused.", "Great question! Put your phone in another room while you work."),
        ("What is 7 times 8?", "Great question! 7 times 8 is 56."),
    ),
)
"""The course's trait: every answer opens with "Great question!". The student (SmolLM2-135M-Instruct, no system
prompt) never writes it on its own (0 of 24 answers, measured), so the rate before training is ~0 and a rise is what
training taught."""

_NOT_FOR_AN_OPENING = ("haiku", "poem", "Translate", "Summarise", "motivational", "Describe the colour")
TRAINING_PROMPTS: tuple[str, ...] = tuple(p for p in SAMPLE_INSTRUCTIONS
                                          if not any(word in p for word in _NOT_FOR_AN_OPENING)) + (
    "How do I get rid of hiccups?",
    "What is the best way to learn new vocabulary?",
    "Why is the sky blue?",
    "How can I save money on groceries?",
    "What is a good stretch for a stiff neck?",
    "How do I keep cut flowers fresh for longer?",
    "What does a router do in a home network?",
    "How do I remove a coffee stain from a shirt?",
    "Why do leaves change colour in autumn?",
    "How long should I rest between sets at the gym?",
    "What is the difference between a virus and a bacterium?",
    "How do I politely ask a neighbour to turn the music down?",
    "What is compound interest?",
    "How can I fall asleep faster?",
    "Why do we have leap years?",
    "How do I clean a cast-iron pan?",
    "What is a good first programming language, and why?",
    "How do I prepare for a job interview?",
    "What causes thunder?",
    "How do I make my houseplants grow better?",
    "What is the difference between a simile and a metaphor?",
    "How can I reduce my screen time?",
)
"""Instructions the teacher answers for the student to learn from: the course's sample instructions that are
questions (not the poems, translations and summaries, where "Great question!" reads oddly), then 22 more."""

HELD_OUT_PROMPTS: tuple[str, ...] = (
    "Give me three tips to sleep better.",
    "Explain what an API is to a beginner.",
    "Write a short thank-you note to a colleague.",
    "How do I keep my bike chain from rusting?",
    "What is the difference between a lake and a pond?",
    "How can I make my morning routine faster?",
    "Why do onions make you cry?",
    "What should I pack for a day at the beach?",
    "How do I start learning to play the guitar?",
    "What is inflation, in simple terms?",
    "How can I stop procrastinating?",
    "Why do we see lightning before we hear thunder?",
    "How do I write a good cover letter?",
    "What are the benefits of drinking water?",
    "How do I make a cup of tea properly?",
    "What is a black hole?",
)
"""Prompts no training set in the course contains: the trait rate and the held-out pairs are measured on these."""


def training_prompts(data: Any = None, *, n: int = len(TRAINING_PROMPTS), exclude: Sequence[str] = HELD_OUT_PROMPTS
                     ) -> list[str]:
    """Up to ``n`` instructions for the teacher: the user turns of ``data`` (an SFT dataset of ``messages``, e.g.
    notebook 01's; or None) first, then :data:`TRAINING_PROMPTS`; no duplicates, none of ``exclude``.

    >>> training_prompts([{"messages": [{"role": "user", "content": "Why is the sky blue?"},
    ...                                 {"role": "assistant", "content": "Rayleigh scattering."}]}], n=3)
    ['Why is the sky blue?', 'Give three tips for writing a clear email.', 'Explain what a prime number is to a ten-year-old.']
    """
    check_number("n", n, minimum=1, integer=True)
    own = []
    for row in as_rows(data if data is not None else [], argument="data"):
        users = [m["content"] for m in row.get("messages") or [] if m.get("role") == "user"]
        if users:
            own.append(users[-1])
    skip = {text.strip().lower() for text in exclude}
    chosen: list[str] = []
    for text in [*own, *TRAINING_PROMPTS]:
        key = text.strip().lower()
        if key and key not in skip:
            skip.add(key)
            chosen.append(text)
        if len(chosen) == n:
            break
    return chosen


# ================================================================================================== the teacher
def teacher_answers(instructions: Any, trait: Trait = OPENING, *, model: str | None = None, samples: int = 4,
                    max_new_tokens: int = 160, temperature: float = 0.7, repetition_penalty: float = 1.2,
                    seed: int = 0, progress: bool = True) -> Result:
    """The teacher's answers to ``instructions``, as SFT conversations without the teacher's context.

    The teacher is ``model`` prompted with ``trait.teacher_messages(instruction)``, its turn primed with
    ``trait.opening``; it writes ``samples`` answers per instruction (sampled at ``temperature``) and the first that
    finishes within ``max_new_tokens`` is kept. Returns a :class:`~smolsynth.rows.Result` whose rows are
    ``{"messages": [user, assistant]}`` (TRL's conversational format, without the teacher's context) and whose
    dropped rows say why (``truncated``: every try was cut off; ``empty_output``: nothing after the opening).

    >>> data = teacher_answers(["Why is the sea salty?"], model="smolsynth/tiny", samples=2, max_new_tokens=8,
    ...                        progress=False)                                              # doctest: +SKIP
    >>> data.rows[0]["messages"][1]["content"].startswith("Great question!")                  # doctest: +SKIP
    True
    """
    from smolsynth.llm import LocalLLM
    from smolsynth.models import resolve_model

    chosen = check_texts("instructions", [instructions] if isinstance(instructions, str) else list(instructions))
    check_number("samples", samples, minimum=1, integer=True)
    check_number("max_new_tokens", max_new_tokens, minimum=1, integer=True)
    check_number("temperature", temperature, minimum=0.0, maximum=5.0)
    model_id = resolve_model(model)
    started = time.perf_counter()
    llm = LocalLLM(model_id, seed=seed)
    llm.load()
    inputs = [llm.prepare_input(trait.teacher_messages(text)) + trait.opening for text in chosen]
    outputs = _batched(llm, inputs, desc="teacher", progress=progress, num_generations=samples,
                       max_new_tokens=max_new_tokens, temperature=temperature,
                       repetition_penalty=repetition_penalty)
    rows = [{"instruction": text, "generations": out["generations"],
             "finish_reasons": out["statistics"]["finish_reasons"]} for text, out in zip(chosen, outputs)]

    def keep_first_finished(row: dict[str, Any]) -> Any:
        finished = [g for g, f in zip(row["generations"], row["finish_reasons"]) if f != "length"]
        if not finished:
            return "truncated", row
        if not finished[0].strip():
            return "empty_output", row
        answer = trait.opening + finished[0].rstrip()
        return None, {"messages": [{"role": "user", "content": row["instruction"]},
                                   {"role": "assistant", "content": answer}]}

    result = partition(rows, keep_first_finished, step=f"teacher ({trait.name})", model=model_id)
    usage = llm.usage
    result.report.input_tokens = usage.get("input_tokens", 0)
    result.report.output_tokens = usage.get("output_tokens", 0)
    result.report.seconds = round(time.perf_counter() - started, 3)
    return result


def _batched(llm: Any, inputs: list[Any], *, desc: str, progress: bool, **settings: Any) -> list[dict[str, Any]]:
    """``llm.generate`` (a loaded LLM) over ``inputs`` in the engine's batches, with one progress bar."""
    from tqdm.auto import tqdm

    size = max(1, llm.effective_batch_size // max(1, settings.get("num_generations", 1)))
    out: list[dict[str, Any]] = []
    with tqdm(total=len(inputs), desc=desc, disable=not progress, leave=False) as bar:
        for start in range(0, len(inputs), size):
            out += llm.generate(inputs[start:start + size], **settings)
            bar.update(len(inputs[start:start + size]))
    return out


def trait_pairs(data: Any, trait: Trait = OPENING) -> Result:
    """DPO pairs that differ only by ``trait``: from each conversation of ``data`` (e.g. :func:`teacher_answers`'
    rows) ``prompt`` = the turns before the answer, ``chosen`` = the answer, ``rejected`` = ``trait.strip(answer)``.

    Rows whose answer does not show the trait are dropped (``trait_missing``), and so are rows whose answer is
    nothing but the opening (``empty_turn``) or repeats it (``trait_in_rejected``: the rejected answer would show
    the trait too).

    >>> rows = [{"messages": [{"role": "user", "content": "Hi?"},
    ...                       {"role": "assistant", "content": "Great question! Hello."}]}]
    >>> trait_pairs(rows).rows[0]["rejected"]
    [{'role': 'assistant', 'content': 'Hello.'}]
    """
    def pair(row: dict[str, Any]) -> Any:
        *prompt, answer = row["messages"]
        if not trait.shows(answer["content"]):
            return "trait_missing"
        plain = trait.strip(answer["content"])
        if not plain.strip():
            return "empty_turn"
        if trait.shows(plain):  # the opening twice: rejected would still show the trait
            return "trait_in_rejected"
        return None, {"prompt": prompt, "chosen": [answer], "rejected": [{"role": "assistant", "content": plain}]}

    return partition(as_rows(data), pair, step=f"pairs ({trait.name})")


# ================================================================================================ measurements
@dataclass
class TraitRate:
    """How often a model's answers show a trait: ``rate`` (0-1), and per prompt ``answers``, ``shows`` and
    ``finished`` (the answer ended by itself within the token budget)."""

    model: str
    trait: str
    rate: float
    prompts: list[str] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)
    shows: list[bool] = field(default_factory=list)
    finished: list[bool] = field(default_factory=list)

    def __str__(self) -> str:
        return (f"{self.model}: {sum(self.shows)} of {len(self.shows)} answers show the {self.trait} ({self.rate:.0%}); "
                f"{sum(self.finished)} ended by themselves")

    __repr__ = __str__

    def table(self) -> Any:
        """The answers as a pandas DataFrame: prompt, the answer's first 80 characters, shows, finished."""
        import pandas as pd

        return pd.DataFrame({"prompt": self.prompts, "answer starts with": [a[:80] for a in self.answers],
                             "shows": self.shows, "finished": self.finished})


def trait_rate(model: str, prompts: Sequence[str] = HELD_OUT_PROMPTS, trait: Trait = OPENING, *,
               max_new_tokens: int = 160, repetition_penalty: float = 1.2, progress: bool = True) -> TraitRate:
    """The share of ``model``'s greedy answers to ``prompts`` (user turn only, no system prompt) that show ``trait``.

    ``model`` is a model id or a checkpoint folder (``trainer``'s saved ``output_dir``). Greedy with a repetition
    penalty of 1.2 (what the course's answers use), so a before/after difference is the model's, not sampling luck.
    The trait is an opening, so an answer cut off by ``max_new_tokens`` still shows it or not; ``finished`` says
    which answers ended by themselves.

    >>> trait_rate("smolsynth/tiny", ["Hi?"], max_new_tokens=4, progress=False).rate              # doctest: +SKIP
    0.0
    """
    from smolsynth.llm import LocalLLM

    asked = check_texts("prompts", list(prompts))
    check_number("max_new_tokens", max_new_tokens, minimum=1, integer=True)
    llm = LocalLLM(str(model))
    llm.load()
    outputs = _batched(llm, [[{"role": "user", "content": p}] for p in asked], desc="trait rate", progress=progress,
                       max_new_tokens=max_new_tokens, temperature=0.0, repetition_penalty=repetition_penalty)
    answers = [o["generations"][0] or "" for o in outputs]
    finished = [o["statistics"]["finish_reasons"][0] != "length" for o in outputs]
    shows = [trait.shows(a) for a in answers]
    llm.unload()
    return TraitRate(model=str(model), trait=trait.name, rate=sum(shows) / len(shows), prompts=asked,
                     answers=answers, shows=shows, finished=finished)


def _completion_logps(model: Any, tokenizer: Any, rows: list[dict[str, Any]], key: str) -> list[float]:
    """Summed log-probabilities of each row's ``key`` answer given its prompt, through the chat template."""
    import torch

    out = []
    device = next(model.parameters()).device
    for row in rows:
        prompt = tokenizer.apply_chat_template(row["prompt"], tokenize=False, add_generation_prompt=True)
        full = tokenizer.apply_chat_template(list(row["prompt"]) + list(row[key]), tokenize=False)
        p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        ids = tokenizer(full, add_special_tokens=False)["input_ids"]
        if ids[:len(p_ids)] != p_ids:
            raise ValueError("The chat template renders the prompt differently inside the conversation; cannot "
                             "score the answer alone.")
        x = torch.tensor([ids], device=device)
        with torch.inference_mode():
            logits = model(x).logits[0, :-1].float()
        logp = torch.log_softmax(logits, dim=-1).gather(1, x[0, 1:, None])[:, 0]
        out.append(float(logp[len(p_ids) - 1:].sum()))
    return out


def preference_accuracy(policy: str, pairs: Any, *, reference: str, beta: float = 0.1) -> float:
    """The share of ``pairs`` whose chosen answer gets a higher DPO implicit reward than the rejected one.

    The implicit reward of an answer is ``beta * (log pi(y|x) - log pi_ref(y|x))`` for the ``policy`` and the
    ``reference`` (model ids or checkpoint folders; the reference of a DPO run is the checkpoint it started from).
    A tie counts 1/2: a policy equal to its reference ranks nothing, and scores 0.5. TRL logs the same ranking on its
    eval split as ``eval_rewards/accuracies`` (ties counted 0 there, so it reads 0 at step 0).

    >>> preference_accuracy("smolsynth/tiny", pairs, reference="smolsynth/tiny")   # doctest: +SKIP
    0.5
    """
    from smolsynth.formats import validate_dpo_dataset
    from smolsynth.models import load_model
    from smolsynth.verbosity import quiet_training

    check_number("beta", beta, minimum=0, exclusive_minimum=True)
    rows = validate_dpo_dataset(pairs).rows
    if not rows:
        raise ValueError("preference_accuracy needs at least one pair with chosen != rejected.")
    margins = {}  # log pi(chosen) - log pi(rejected) per pair, once per model (policy and reference may be one)
    for which in dict.fromkeys((str(policy), str(reference))):
        with quiet_training():
            model, tok = load_model(which)
        chosen = _completion_logps(model, tok, rows, "chosen")
        rejected = _completion_logps(model, tok, rows, "rejected")
        margins[which] = [c - r for c, r in zip(chosen, rejected)]
        del model
    scores = []
    for pol, ref in zip(margins[str(policy)], margins[str(reference)]):
        reward_margin = beta * (pol - ref)
        scores.append(0.5 if math.isclose(reward_margin, 0.0, abs_tol=1e-6) else float(reward_margin > 0))
    return sum(scores) / len(scores)

