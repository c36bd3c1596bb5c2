"""The one vocabulary of smolsynth: column names, drop reasons, and the two formats TRL trains on.

Generation data uses distilabel's column names; training data uses TRL's. Every module reads and writes these names,
and this module owns the checks of the training formats (ARCHITECTURE.md, "One vocabulary").

========================  ==========================================================================================
column                    holds
========================  ==========================================================================================
``instruction``           the user's request (one string)
``system_prompt``         a system prompt for that row, when there is one
``generation``            one generated answer (distilabel's ``TextGeneration`` output)
``generations``           the candidate answers to one instruction (a list of strings)
``generation_models``     who wrote each candidate, same order as ``generations``
``generation_sources``    how each candidate was made: ``"pool"`` or ``"evol:<direction>"``
``num_generations``       (an argument, never a column) how many candidates per instruction
``ratings``               one rating (1-5) per candidate, from the judge; a list of aspect ratings with ``aspect="all"``
``rationales``            the judge's reason for each rating
``model_name``            the model that wrote a row's ``generation`` (distilabel adds it)
``reason``                why a row was dropped (see :data:`DROP_REASONS`)
``messages``              SFT data: a conversation, a list of ``{"role", "content"}`` ending with the assistant
``prompt``/``completion`` SFT data, the other form: message lists before and of the last assistant turn
``prompt``/``chosen``/    DPO data: ``prompt`` a message list ending with the user's turn; ``chosen`` and
``rejected``              ``rejected`` each a list with one assistant message
========================  ==========================================================================================

A string ``prompt`` is never mixed with ``messages`` in one dataset (TRL 1.16's format detection then depends on the
hash seed).

    >>> to_sft([{"instruction": "Say hi", "generation": "Hi!"}, {"instruction": "Oops", "generation": None}]).rows
    [{'messages': [{'role': 'user', 'content': 'Say hi'}, {'role': 'assistant', 'content': 'Hi!'}]}]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Dict, List, Literal, Optional

from smolsynth.arguments import check_columns
from smolsynth.rows import Result, Row, as_rows, partition, to_dataset

INSTRUCTION = "instruction"
SYSTEM_PROMPT = "system_prompt"
GENERATION = "generation"
GENERATIONS = "generations"
GENERATION_MODELS = "generation_models"
GENERATION_SOURCES = "generation_sources"
RATINGS = "ratings"
RATIONALES = "rationales"
MODEL_NAME = "model_name"
REASON = "reason"
MESSAGES = "messages"
PROMPT, COMPLETION = "prompt", "completion"
CHOSEN, REJECTED = "chosen", "rejected"

DROP_REASONS: Dict[str, str] = {
    # any step
    "unparsed_output": "the task's parser could not read the model's output (a column came back None)",
    "empty_output": "the model wrote nothing (or only whitespace)",
    "exception: <Type>": "the whole batch raised that exception (its message is in the row's 'error')",
    "truncated": "the model ran out of tokens, or of the length its schema allows, before it finished: a cut-off text",
    "template_echo": "the output copies its prompt's scaffolding ('#Rewritten Response#', '[Rationale]', ...)",
    # SFT rows
    "missing_instruction": "no instruction to build a conversation from",
    "missing_response": "no answer to train on",
    "empty_turn": "a turn of the conversation is empty",
    "trait_missing": "the answer does not show the trait its pair is about (smolsynth.distillation.trait_pairs)",
    "trait_in_rejected": "the answer shows the trait twice (its opening repeated): without one, it still shows it",
    "invalid_conversation": "roles do not alternate user/assistant (after an optional system turn)",
    # Self-Instruct
    "empty": "the candidate instruction is empty",
    "too_short": "fewer than 4 words (the paper drops <= 3)",
    "too_long": "more than 150 words",
    "blocked_keyword": "mentions image/graph/picture/file/map/draw/plot/'go to' (a text model cannot do it)",
    "write_a_program": "starts with 'Write a program'",
    "starts_with_punctuation": "starts with a punctuation mark",
    "starts_with_non_ascii": "starts with a non-ASCII character",
    "too_similar": "ROUGE-L above the threshold against a seed or an instruction kept before",
    "over_max": "more instructions than max_instructions asked for",
    "copies_prompt": "the generated instruction copies a line of the Self-Instruct prompt itself (ROUGE-L above 0.5)",
    "conflicting_outputs": "Self-Instruct instances: one input has two different outputs, so the whole task is dropped",
    "input_equals_output": "Self-Instruct instances: the output repeats the input",
    "duplicate_instance": "Self-Instruct instances: the same input and output as an instance kept before",
    # Magpie
    "ends_with_colon": "the instruction ends with ':' (the model began a list it never wrote)",
    "duplicate": "the same text as an earlier row, after normalization",
    "near_duplicate": "word 3-gram Jaccard similarity with an earlier row at or above the threshold",
    "low_input_quality": "the quality tagger rated the instruction below the kept tags (Magpie keeps good, excellent)",
    "unparsed_quality": "the quality tagger's answer could not be read",
    # Evol-Instruct
    "empty_evolution": "the rewrite is empty",
    "copies_prompt_template": "the evolved instruction copies the mutation prompt's words ('#Rewritten Prompt#')",
    "no_information_gain": "the evolved instruction says the same as its parent",
    "judge_unparsed": "the equal / not-equal judge's answer could not be read",
    "sorry_short_response": "the answer says 'sorry' in under 80 words",
    "only_stop_words_response": "the answer is only punctuation and stop words",
    # preferences
    "fewer_than_two_candidates": "fewer than two candidate answers to compare",
    "no_candidates": "no candidate answers to judge",
    "wrong_number_of_ratings": "the judge gave a different number of ratings than there are candidates",
    "unparsed_rating": "one of the judge's ratings could not be read",
    "missing_ratings": "fewer than two candidates have a rating",
    "tie": "no candidate is rated strictly lower than the chosen one under the rule",
    "chosen_equals_rejected": "chosen and rejected are the same text: nothing to learn",
    # text classification
    "label_conflict": "the same or near-same text is also under another label (its 'conflicts_with' names the row)",
    # looking at the data (notebook 07: smolsynth.dedup, smolsynth.selection, smolsynth.contamination)
    "minhash_duplicate": "MinHash-LSH estimates its word n-gram Jaccard similarity with a kept row at or above the "
                         "threshold (its 'duplicate_of' names the row)",
    "semantic_duplicate": "its embedding's cosine similarity with a kept row is at or above the threshold: a "
                          "paraphrase (its 'duplicate_of' names the row)",
    "too_long_for_scorer": "Deita scoring: the prompt with this row's instruction and answer overflows the scorer's "
                           "context",
    "deita_too_similar": "Deita selection: cosine similarity above the threshold (0.9) with a row already selected",
    "deita_over_budget": "Deita selection: the budget was full before this row's turn (it scored lower)",
    "contaminated": "shares a word n-gram with an evaluation prompt (its 'contaminated_by' names the prompt)",
    # topic trees and structured records (notebook 06: smolsynth.topics, smolsynth.records)
    "repeats_sibling": "a proposed subtopic its parent already has",
    "repeats_ancestor": "a proposed subtopic with the name of its parent or a topic above it",
    "not_needed": "a proposed subtopic beyond per_node (the first per_node that pass are kept)",
    "copies_guidance": "the sample writes its prompt's guidance into the output instead of following it",
    "copies_example": "the sample copies one of its prompt's few-shot examples",
    "schema_invalid": "the record does not validate against its JSON schema (its 'error' says where and why)",
    # training
    "too_long_for_max_length": "the prompt alone fills max_length tokens (TRL would drop or empty the row)",
}
"""Every reason a row can be dropped for, with what it means. Per-aspect judge drops are prefixed with the aspect
(``"honesty: unparsed_output"``)."""

SFT_FORMAT = ('a "messages" column: per row a list of {"role", "content"} dicts (optionally a system turn first, '
              'then user/assistant turns, ending with an assistant turn); or "prompt" and "completion" columns')
DPO_FORMAT = ('"prompt" (a list of {"role", "content"} messages ending with a user turn), "chosen" and "rejected" '
              '(each a list with one assistant message); or all three as plain strings')

__all__ = ["CHOSEN", "COMPLETION", "DPO_FORMAT", "DROP_REASONS", "GENERATION", "GENERATIONS", "GENERATION_MODELS",
           "GENERATION_SOURCES", "INSTRUCTION", "MESSAGES", "MODEL_NAME", "PROMPT", "RATINGS", "RATIONALES", "REASON",
           "REJECTED", "SFT_FORMAT", "SYSTEM_PROMPT", "candidate_rows", "conversation_problem", "messages_to_prompt_completion",
           "pair_row", "same_answer", "to_sft", "validate_dpo_dataset", "validate_sft_dataset"]


# ---------------------------------------------------------------------------------------------------- checks
def same_answer(a: Any, b: Any) -> bool:
    """True when two answers (strings or one-message lists) are the same text, whitespace aside: a DPO pair of
    them teaches nothing (drop reason ``chosen_equals_rejected``).

    >>> same_answer("Paris.", " Paris. "), same_answer([{"role": "assistant", "content": "a"}], "b")
    (True, False)
    """
    def text(x: Any) -> Any:
        if isinstance(x, list) and len(x) == 1 and isinstance(x[0], Mapping):
            x = x[0].get("content")
        return x.strip() if isinstance(x, str) else x

    return text(a) is not None and text(a) == text(b)


def conversation_problem(messages: Any) -> Optional[str]:
    """Why ``messages`` is not a trainable conversation (a drop reason), or None.

    >>> conversation_problem([{"role": "user", "content": "Hi"}])
    'missing_response'
    """
    if not isinstance(messages, list) or not messages or not all(isinstance(m, Mapping) for m in messages):
        return "invalid_conversation"
    turns = messages[1:] if messages[0].get("role") == "system" else messages
    for i, message in enumerate(turns):
        if message.get("role") != ("user", "assistant")[i % 2]:
            return "invalid_conversation"
        content = message.get("content")
        if not isinstance(content, str) or not content.strip():
            return "empty_turn"
    if not turns or turns[-1]["role"] != "assistant":
        return "missing_response"
    return None


def candidate_rows(data: Any, fn: str, made_by: str) -> List[Row]:
    """``data`` as rows of an ``instruction`` and its candidate ``generations`` (a list), for ``fn`` (the caller's
    name, for the error); ``made_by`` names what makes such rows.

    >>> candidate_rows([{"instruction": "Hi", "generations": "Hello"}], "judge", "pool_responses()")
    Traceback (most recent call last):
    ...
    ValueError: judge(): row 0 has 'generations' = str; it must be a list of candidate answers, as pool_responses() makes it.
    """
    rows = as_rows(data)
    check_columns(rows, [INSTRUCTION, GENERATIONS], fn=fn, made_by=made_by)
    for i, row in enumerate(rows):
        if not isinstance(row[GENERATIONS], (list, tuple)):
            raise ValueError(f"{fn}(): row {i} has 'generations' = {type(row[GENERATIONS]).__name__}; it must be a "
                             "list of candidate answers, as pool_responses() makes it.")
    return rows


def pair_row(prompt: List[Dict[str, str]], chosen: str, rejected: str, **extra: Any) -> Row:
    """One DPO row in TRL's conversational format (``extra`` columns such as ratings go after the three).

    >>> pair_row([{"role": "user", "content": "Hi"}], "Hello!", "Go away.")["rejected"]
    [{'role': 'assistant', 'content': 'Go away.'}]
    """
    return {PROMPT: prompt, CHOSEN: [{"role": "assistant", "content": chosen}],
            REJECTED: [{"role": "assistant", "content": rejected}], **extra}


# ------------------------------------------------------------------------------------------------------- SFT
def to_sft(data: Any, *, instruction_column: str = INSTRUCTION, response_column: str = GENERATION,
           system_column: Optional[str] = None, messages_column: Optional[str] = None,
           format: Literal["messages", "prompt_completion"] = "messages") -> Result:
    """Rows -> an SFT dataset that TRL's ``SFTTrainer`` accepts as is.

    * single turn: ``instruction_column`` and ``response_column`` (default ``generation``), and optionally
      ``system_column``;
    * multi-turn: ``messages_column`` holds the conversation (user and assistant alternating, ending with the
      assistant), e.g. Magpie's ``conversation``.

    ``format="messages"`` (default) gives one ``messages`` column; ``"prompt_completion"`` gives ``prompt`` (every
    message but the last) and ``completion`` (the last assistant message), both message lists. Rows that cannot become
    a conversation are dropped with a reason (``missing_instruction``, ``missing_response``, ``empty_turn``,
    ``invalid_conversation``), never turned into empty turns. Returns a :class:`~smolsynth.rows.Result`.

    >>> to_sft([{"instruction": "Hi", "generation": "Hello"}], format="prompt_completion").rows[0]
    {'prompt': [{'role': 'user', 'content': 'Hi'}], 'completion': [{'role': 'assistant', 'content': 'Hello'}]}
    """
    if format not in ("messages", "prompt_completion"):
        raise ValueError(f"format={format!r} must be 'messages' or 'prompt_completion'.")
    rows = as_rows(data)
    needed = (messages_column, system_column) if messages_column else (instruction_column, response_column,
                                                                       system_column)
    for column in filter(None, needed):
        if rows and column not in rows[0]:
            raise ValueError(f"to_sft(): column {column!r} is not in the data (columns: {sorted(rows[0])}); pass "
                             "instruction_column=/response_column=/system_column=/messages_column= to name yours.")

    def convert(row: Row) -> Any:
        system = row.get(system_column) if system_column else None
        head = [{"role": "system", "content": system}] if isinstance(system, str) and system.strip() else []
        if messages_column:
            conversation = row.get(messages_column)
            problem = conversation_problem(conversation)
            if problem:
                return problem
            if conversation[0].get("role") == "system":
                head, conversation = [dict(conversation[0])], conversation[1:]
            messages = head + [{"role": m["role"], "content": m["content"]} for m in conversation]
        else:
            instruction, response = row.get(instruction_column), row.get(response_column)
            if not isinstance(instruction, str) or not instruction.strip():
                return "missing_instruction"
            if not isinstance(response, str) or not response.strip():
                return "missing_response"
            messages = head + [{"role": "user", "content": instruction}, {"role": "assistant", "content": response}]
        if format == "messages":
            return None, {MESSAGES: messages}
        return None, {PROMPT: messages[:-1], COMPLETION: messages[-1:]}

    return partition(rows, convert, step="to_sft")


def _messages(value: Any, *, column: str, row: int, expected: str) -> List[Dict[str, str]]:
    if not isinstance(value, list) or not value:
        raise ValueError(f"Column {column!r}, row {row}: expected a non-empty list of messages, got "
                         f"{type(value).__name__} {str(value)[:80]!r}. Expected format: {expected}.")
    out = []
    for m in value:
        if not isinstance(m, Mapping) or not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
            raise ValueError(f"Column {column!r}, row {row}: each message must be a dict with string 'role' and "
                             f"'content', got {str(m)[:80]!r}. Expected format: {expected}.")
        out.append({"role": m["role"], "content": m["content"]})
    return out


def _prompt_completion(messages: Any, row: int) -> Row:
    msgs = _messages(messages, column=MESSAGES, row=row, expected=SFT_FORMAT)
    if msgs[-1]["role"] != "assistant":
        raise ValueError(f"Column 'messages', row {row}: the last message must be the assistant's answer (it is the "
                         f"completion the model learns), got role {msgs[-1]['role']!r}. Expected {SFT_FORMAT}.")
    if not any(m["role"] == "user" for m in msgs[:-1]):
        raise ValueError(f"Column 'messages', row {row}: no user turn before the assistant's answer. Expected "
                         f"{SFT_FORMAT}.")
    return {PROMPT: msgs[:-1], COMPLETION: msgs[-1:]}


def messages_to_prompt_completion(data: Any) -> Any:
    """A ``messages`` dataset as ``prompt``/``completion`` message lists (every other column dropped): the last
    assistant turn is the completion, so TRL's completion-only loss trains the final answer only.

    >>> messages_to_prompt_completion([{"messages": [{"role": "user", "content": "Hi"},
    ...                                              {"role": "assistant", "content": "Hello!"}]}])[0]["completion"]
    [{'role': 'assistant', 'content': 'Hello!'}]
    """
    rows = as_rows(data)
    if rows and MESSAGES not in rows[0]:
        raise ValueError(f"No 'messages' column (columns: {sorted(rows[0])}). Expected {SFT_FORMAT}.")
    return to_dataset([_prompt_completion(r.get(MESSAGES), i) for i, r in enumerate(rows)])


def _nonempty(data: Any, what: str) -> List[Row]:
    rows = as_rows(data, argument=what)
    if not rows:
        raise ValueError(f"{what} is empty: there is nothing to train on.")
    return rows


def validate_sft_dataset(data: Any) -> Result:
    """Check SFT data and return it in the form TRL trains on: ``prompt``/``completion`` message lists.

    ``messages`` rows are split into prompt and completion (see :func:`messages_to_prompt_completion`);
    ``prompt``/``completion`` rows are kept as they are. Extra columns are dropped. A row in the wrong format raises
    ValueError naming the column, the row and the expected format; a row with an empty answer is dropped
    (``missing_response``). Returns a :class:`~smolsynth.rows.Result` (same shape as :func:`validate_dpo_dataset`).

    >>> validate_sft_dataset([{"text": "hi"}])
    Traceback (most recent call last):
    ...
    ValueError: SFT data has no 'messages' column (columns: ['text']). Expected a "messages" column: ...
    """
    rows = _nonempty(data, "SFT data")
    columns = set(rows[0])
    if MESSAGES in columns:
        converted = [_prompt_completion(r.get(MESSAGES), i) for i, r in enumerate(rows)]
    elif {PROMPT, COMPLETION} <= columns:
        conversational = isinstance(rows[0][PROMPT], list)
        converted = []
        for i, row in enumerate(rows):
            for col in (PROMPT, COMPLETION):
                if conversational:
                    _messages(row[col], column=col, row=i, expected=SFT_FORMAT)
                elif not isinstance(row[col], str):
                    raise ValueError(f"Column {col!r}, row {i}: mixes strings and message lists. Expected "
                                     f"{SFT_FORMAT}.")
            converted.append({PROMPT: row[PROMPT], COMPLETION: row[COMPLETION]})
    else:
        raise ValueError(f"SFT data has no 'messages' column (columns: {sorted(columns)}). Expected {SFT_FORMAT}.")

    def answered(row: Row) -> Optional[str]:
        completion = row[COMPLETION]
        text = completion if isinstance(completion, str) else completion[-1]["content"]
        return None if text.strip() else "missing_response"

    return partition(converted, answered, step="validate SFT data")


def validate_dpo_dataset(data: Any) -> Result:
    """Check DPO data; return only ``prompt``/``chosen``/``rejected``, with rows that cannot teach dropped.

    A row in the wrong format raises ValueError naming the column, the row and the expected format. A row whose
    chosen and rejected answers are the same text is dropped (``chosen_equals_rejected``, :func:`same_answer`).
    Returns a :class:`~smolsynth.rows.Result` (same shape as :func:`validate_sft_dataset`).

    >>> validate_dpo_dataset([{"prompt": "Hi", "chosen": "Hello"}])
    Traceback (most recent call last):
    ...
    ValueError: DPO data has no 'rejected' column (columns: ['chosen', 'prompt']). Expected "prompt" ...
    """
    rows = _nonempty(data, "DPO data")
    for col in (PROMPT, CHOSEN, REJECTED):
        if col not in rows[0]:
            raise ValueError(f"DPO data has no {col!r} column (columns: {sorted(rows[0])}). Expected {DPO_FORMAT}.")
    conversational = not isinstance(rows[0][PROMPT], str)
    for i, row in enumerate(rows):
        if conversational:
            prompt = _messages(row[PROMPT], column=PROMPT, row=i, expected=DPO_FORMAT)
            if prompt[-1]["role"] != "user":
                raise ValueError(f"Column 'prompt', row {i}: the prompt must end with a user turn, got role "
                                 f"{prompt[-1]['role']!r}. Expected {DPO_FORMAT}.")
            for col in (CHOSEN, REJECTED):
                msgs = _messages(row[col], column=col, row=i, expected=DPO_FORMAT)
                if len(msgs) != 1 or msgs[0]["role"] != "assistant":
                    raise ValueError(f"Column {col!r}, row {i}: expected a list with one assistant message, got "
                                     f"roles {[m['role'] for m in msgs]}. Expected {DPO_FORMAT}.")
        else:
            for col in (PROMPT, CHOSEN, REJECTED):
                if not isinstance(row[col], str):
                    raise ValueError(f"Column {col!r}, row {i}: a message list in string-format data (row 0 has a "
                                     f"string prompt); never mix the two. Expected {DPO_FORMAT}.")
    trimmed = [{PROMPT: r[PROMPT], CHOSEN: r[CHOSEN], REJECTED: r[REJECTED]} for r in rows]
    result = partition(trimmed, lambda r: "chosen_equals_rejected" if same_answer(r[CHOSEN], r[REJECTED]) else None,
                       step="validate DPO data")
    if not result.rows:
        raise ValueError("DPO data: every row has chosen == rejected; there is nothing to learn from.")
    return result
