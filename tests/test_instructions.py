"""Instruction datasets: Self-Instruct's filters and loop, Magpie on three chat templates, Evol-Instruct's
eliminations, responses, and the SFT hand-off checked by TRL itself (its format checks and a 2-step SFTTrainer run).

Filters are tested on crafted inputs with known answers; the methods run for real on the tiny model, whose text is
noise, so those tests judge structure: every row accounted for, every rule honoured by what is kept."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

import trl

from smolsynth.instructions import (
    BOOTSTRAP_HEADER, EVOL_IN_BREADTH, EVOL_IN_DEPTH, copies_template_words, evol_instruct,
    evolution_elimination_reason, filter_instructions, generate, instruction_rule, magpie, rouge_l, self_instruct,
    strip_numbering, to_sft)
from smolsynth.instructions.evol_instruct import _judge_verdict
from smolsynth.instructions.magpie import _magpie_filter
from smolsynth.instructions.self_instruct import _contexts
from smolsynth.rows import Result, partition

TEMPLATES = Path(trl.__file__).parent / "chat_templates"  # the real templates tests/test_magpie.py uses
SEEDS = [
    "Explain why the sky is blue to a child.",
    "Give three tips for a successful job interview.",
    "Summarize the plot of Hamlet in two sentences.",
    "Translate the phrase good morning into French and Spanish.",
    "Suggest a name for a coffee shop near a library.",
    "List four healthy breakfast ideas for busy mornings.",
    "Describe how the gears of a bicycle work.",
    "Write a polite email that declines a meeting invitation.",
]
TINY = {"max_new_tokens": 16, "progress": False, "cache": False}


def accounted(result: Any) -> None:
    """Every candidate is either kept or dropped with a reason, and the report says so."""
    report = result.report
    assert report.rows_in == report.rows_out + report.dropped_total, report
    assert report.rows_out == len(result.dataset)
    assert report.dropped_total == len(result.dropped)
    if len(result.dropped):
        assert all(result.dropped["reason"]), "a dropped row without a reason"


# ------------------------------------------------------------------------------------------- Self-Instruct
REF = "alpha bravo charlie delta echo foxtrot golf hotel india juliet"


@pytest.mark.parametrize(("candidate", "score", "kept"), [
    ("alpha bravo charlie delta echo foxtrot golf xray yankee zulu", 0.7, True),  # 7 of 10 words in order: kept
    ("alpha bravo charlie delta echo foxtrot golf hotel yankee zulu", 0.8, False),  # 8 of 10: too similar
    ("alpha bravo charlie delta echo foxtrot xray yankee zulu kilo", 0.6, True),
    ("juliet india hotel golf foxtrot echo delta charlie bravo alpha", 0.1, True),  # same words, reversed order
])
def test_rouge_l_filter_around_the_threshold(candidate: str, score: float, kept: bool) -> None:
    assert rouge_l(REF, candidate) == pytest.approx(score)
    result = filter_instructions([candidate], references=[REF])
    assert (len(result.dataset) == 1) is kept
    if kept:
        assert result.dataset[0]["max_rouge_l"] == pytest.approx(score) and result.dataset[0]["most_similar"] == REF
    else:
        assert result.report.dropped == {"too_similar": 1} and result.dropped[0]["most_similar"] == REF


def test_rouge_l_filter_compares_with_the_candidates_kept_before() -> None:
    first = "alpha bravo charlie delta echo foxtrot golf hotel india juliet"
    result = filter_instructions([first, first.replace("juliet", "kilo"), "Name three rivers in South America."],
                                 references=["Explain how tides work on the coast."])
    assert result.dataset["instruction"] == [first, "Name three rivers in South America."]
    assert result.report.dropped == {"too_similar": 1}
    accounted(result)


@pytest.mark.parametrize(("text", "reason"), [
    ("Name three birds.", "too_short"),  # 3 words: the paper drops <= 3
    ("Name three small birds.", None),  # 4 words
    (" ".join(["word"] * 150), None),
    (" ".join(["word"] * 151), "too_long"),
    ("Draw a cat for my sister please.", "blocked_keyword"),
    ("Make a plot of these sales numbers.", "blocked_keyword"),
    ("Go to the store and buy some milk.", "blocked_keyword"),
    ("Describe the images in this magazine article.", "blocked_keyword"),
    ("Explain the mapping between keys and values.", None),  # "mapping" is not "map": whole words only
    ("Update the profile description of my account.", None),  # "profile" is not "file"
    ("Write a program that sorts a list of numbers.", "write_a_program"),
    ("- Explain how volcanoes erupt today.", "starts_with_punctuation"),
    ("¿Cómo se dice hello en inglés?", "starts_with_non_ascii"),
    ("   ", "empty"),
])
def test_keyword_length_and_first_character_rules(text: str, reason: str | None) -> None:
    assert instruction_rule(text) == reason
    result = filter_instructions([text])
    assert result.report.dropped == ({reason: 1} if reason else {})


def test_numbering_and_bullets_are_stripped() -> None:
    cases = {"1. Name a bird.": "Name a bird.", "2) Name a tree.": "Name a tree.", "(3) Sort this.": "Sort this.",
             "- Name a fish.": "Name a fish.", "* Name a cat.": "Name a cat.", "• Name a dog.": "Name a dog.",
             "Task 4: Sort these.": "Sort these.", "Query 5. Explain it.": "Explain it.",
             "**6.** Be bold.": "Be bold.", "1. - Twice marked.": "Twice marked.",
             "3.5 kg of flour is how many cups?": "3.5 kg of flour is how many cups?",
             "2024 was a leap year: why?": "2024 was a leap year: why?"}
    assert {text: strip_numbering(text) for text in cases} == cases


def test_bootstrap_prompts_show_six_seeds_and_two_generated_shuffled() -> None:
    pool = ["Generated one is here.", "Generated two is here.", "Generated three is here."]
    first = _contexts(SEEDS, [], random.Random(0), 3, 6, 2)
    later = _contexts(SEEDS, pool, random.Random(0), 20, 6, 2)
    assert all(context.splitlines()[0] == BOOTSTRAP_HEADER for context in first + later)
    for context in first:  # round one: no pool yet, 8 seeds (the authors' code fills the gap with seeds)
        lines = context.splitlines()[1:]
        assert len(lines) == 8 and set(lines) == set(SEEDS)
    positions = set()
    for context in later:
        lines = context.splitlines()[1:]
        assert len(lines) == 8 and len(set(lines)) == 8
        assert sum(line in pool for line in lines) == 2 and sum(line in SEEDS for line in lines) == 6
        positions.update(i for i, line in enumerate(lines) if line in pool)
    assert len(positions) > 2, "generated examples should not always sit at the same place"


@pytest.fixture(scope="module")
def bootstrapped(tiny_path) -> Result:
    return self_instruct(SEEDS, rounds=2, prompts_per_round=3, num_instructions=3, seed=1, temperature=1.0,
                         **{**TINY, "max_new_tokens": 40})


def test_self_instruct_accounts_for_every_candidate_and_keeps_only_novel_ones(bootstrapped) -> None:
    result = bootstrapped
    accounted(result)
    assert [r.step for r in result.steps] == ["round 1: generate", "round 1: copies the prompt", "round 1: filter",
                                               "round 2: generate", "round 2: copies the prompt", "round 2: filter"]
    assert result.params["seeds"] == SEEDS
    kept = result.dataset["instruction"] if len(result.dataset) else []
    for i, text in enumerate(kept):
        assert instruction_rule(text) is None
        assert all(rouge_l(other, text) <= 0.7 + 1e-9 for other in SEEDS + kept[:i])
        assert text == strip_numbering(text)
    filters = [r for r in result.steps if r.step.endswith("filter")]
    assert sum(r.rows_out for r in filters) == len(kept)


def test_the_prompt_the_lesson_prints_is_the_prompt_self_instruct_sends(bootstrapped) -> None:
    """Notebook 01 prints distilabel's SelfInstruct prompt around `bootstrap_context(examples)`: every context the
    loop sent is exactly that function of its examples."""
    from smolsynth.instructions import bootstrap_context

    contexts = {row["context"] for row in bootstrapped.rows + bootstrapped.dropped_rows if row.get("context")}
    assert contexts
    for context in contexts:
        assert context == bootstrap_context(context.splitlines()[1:])


def test_instructions_that_copy_the_prompt_are_dropped_with_the_line_they_copy(tiny_path) -> None:
    """Measured on SmolLM2-135M: half of notebook 01's kept instructions were lines of distilabel's own prompt."""
    from smolsynth.instructions.self_instruct import copies_prompt, prompt_lines
    from smolsynth.llm import LocalLLM
    from smolsynth.verbosity import import_distilabel

    task = import_distilabel("distilabel.steps.tasks").SelfInstruct(llm=LocalLLM("smolsynth/tiny"),
                                                                    num_instructions=5)
    lines = prompt_lines(task)
    assert any(line.startswith("Develop 5 user queries") for line in lines) and BOOTSTRAP_HEADER not in lines
    copied = "Develop 5 user queries that can be received by the given AI application."
    assert copies_prompt(copied, lines).startswith("Develop 5 user queries")
    assert copies_prompt("Design queries that are self-contained and standalone.", lines) is not None
    assert all(copies_prompt(seed, lines) is None for seed in SEEDS)


def test_self_instruct_caps_the_pool_and_checks_its_input(tiny_path) -> None:
    result = self_instruct(SEEDS, rounds=2, prompts_per_round=2, num_instructions=4, max_instructions=1, seed=2,
                           temperature=1.0, **{**TINY, "max_new_tokens": 40})
    accounted(result)
    assert len(result.rows) <= 1
    if result.report.dropped.get("over_max"):  # the cap was hit: the pool is full and no later round ran
        assert len(result.rows) == 1 and [r.step for r in result.steps] == ["round 1: generate", "round 1: filter"]
    with pytest.raises(TypeError, match="seeds must be a list of strings"):
        self_instruct("Explain tides.")
    with pytest.raises(ValueError, match="rounds=0"):
        self_instruct(SEEDS, rounds=0)


# -------------------------------------------------------------------------------------------------- Magpie
def _template(name: str | None) -> str | None:
    return (TEMPLATES / name).read_text() if name else None


@pytest.mark.parametrize(("template", "header"), [
    (None, "<|im_start|>user\n"),  # the tiny model's own ChatML template
    ("llama3.jinja", "<|start_header_id|>user<|end_header_id|>\n\n"),
    ("qwen2_5.jinja", "<|im_start|>user\n"),
])
def test_magpie_on_three_chat_templates_never_hangs(template: str | None, header: str, tiny_path) -> None:
    from smolsynth.llm import LocalLLM

    llm = LocalLLM("smolsynth/tiny", chat_template=_template(template), use_magpie_template=True,
                   generation_kwargs={"max_new_tokens": 8, "temperature": 1.0})
    if template == "llama3.jinja":  # the template writes {{ bos_token }}; the tiny vocabulary has no free id for
        # Llama's own, so an existing special token plays BOS for this test (restored afterwards)
        llm.tokenizer.bos_token = "<|endoftext|>"
    try:
        _magpie_checks(llm, template, header)
    finally:
        llm.tokenizer.bos_token = None
    assert llm.tokenizer.bos_token is None


def _magpie_checks(llm: Any, template: str | None, header: str) -> None:
    system = [{"role": "system", "content": "You are a gardener."}]
    prompt = llm.prepare_input(system)  # what Magpie sends for a row with this system prompt
    assert prompt.endswith(header) and "You are a gardener." in prompt and "assistant" not in prompt
    if template == "llama3.jinja":
        assert prompt.count("<|endoftext|>") == 1  # one BOS, not two
    if template == "qwen2_5.jinja":
        assert "You are Qwen" in llm.prepare_input([])  # Qwen2.5 needs its default system prompt first
    result = magpie(5, llm=llm, system_prompt="You are a gardener.", only_instruction=True, batch_size=2,
                    progress=False, cache=False)  # 5 rows, batches of 2: MagpieGenerator would hang here
    accounted(result)
    assert result.steps[0].rows_in == 5
    every_row = result.rows + result.dropped_rows  # kept or dropped (the tiny model's rows are often truncated)
    assert len(every_row) == 5 and {r["system_prompt"] for r in every_row} == {"You are a gardener."}


@pytest.fixture(scope="module")
def magpie_rows(tiny_path) -> Result:
    return magpie(6, system_prompt={"You are a chef.": 3, "You are a nurse.": 1, "You are a pirate.": 0},
                  response_temperature=0.7, seed=3, **TINY)


def test_magpie_single_turn_with_weighted_system_prompts(magpie_rows) -> None:
    result = magpie_rows
    accounted(result)
    for row in result.rows:
        assert {"instruction", "generation", "system_prompt"} <= set(row)
        assert "response" not in row  # the answer is in generation, never response
    used = {r["system_prompt"] for r in result.rows + result.dropped_rows}
    assert len(result.rows) + len(result.dropped_rows) >= 6
    assert used <= {"You are a chef.", "You are a nurse."}  # weight 0 is never picked
    assert result.params["system_prompt"]["You are a chef."] == 3


def test_magpie_dropped_rows_name_the_answer_generation_too(tiny_path) -> None:
    """Rows the runner drops with an answer (here: answers cut off by a 2-token budget) carry it as ``generation``,
    never as distilabel's ``response``."""
    result = magpie(3, response_temperature=0.7, response_max_new_tokens=2, seed=3, **TINY)
    answered = [r for r in result.dropped_rows if r.get("response") or r.get("generation")]
    assert answered, result.report
    assert all("response" not in r and "generation" in r for r in answered)


def test_magpie_multi_turn_and_to_sft(tiny_path) -> None:
    # the tiny model rarely ends a turn: keep cut-off turns, or nothing is left to check
    result = magpie(3, n_turns=2, response_temperature=0.7, allow_truncated=True, **{**TINY, "max_new_tokens": 8})
    accounted(result)
    assert len(result.rows) >= 1, result
    for row in result.rows:
        assert [m["role"] for m in row["conversation"]] == ["user", "assistant"] * 2
        assert row["instruction"] == row["conversation"][0]["content"].strip()
    sft = to_sft(result.rows, messages_column="conversation")
    assert sft.dataset.column_names == ["messages"] and len(sft.rows) == len(result.rows)


def test_magpie_filters_on_crafted_rows() -> None:
    rows = [{"instruction": "Give me a recipe for soup.", "generation": "Sure."},
            {"instruction": "Here are some ideas:", "generation": "1."},
            {"instruction": "give me a recipe for SOUP", "generation": "Ok."},
            {"instruction": "Give me a recipe for soup tonight.", "generation": "Ok."},
            {"instruction": "What is a verb?", "generation": "   "}]
    result = partition(rows, _magpie_filter(n_turns=1, only_instruction=False, threshold=0.7), step="filter")
    accounted(result)
    assert [r["instruction"] for r in result.rows] == ["Give me a recipe for soup."]
    assert [r["reason"] for r in result.dropped_rows] == ["ends_with_colon", "duplicate", "near_duplicate",
                                                          "empty_turn"]
    assert result.dropped_rows[1]["duplicate_of"] == "Give me a recipe for soup."
    # distilabel's name for the answer is read, and written as generation
    renamed = partition([{"instruction": "Name a bird.", "response": "Robin."}],
                        _magpie_filter(n_turns=1, only_instruction=False, threshold=0.7), step="filter")
    assert renamed.rows == [{"instruction": "Name a bird.", "generation": "Robin."}]


def test_magpie_input_errors(tiny_path) -> None:
    from smolsynth.llm import LocalLLM

    with pytest.raises(ValueError, match="weight"):
        magpie(2, system_prompt={"You are a chef.": -1})
    with pytest.raises(ValueError, match="num_rows"):
        magpie(-1)
    llm = LocalLLM("smolsynth/tiny")
    llm.load()
    bare = llm.tokenizer.__class__.from_pretrained(str(tiny_path))
    bare.chat_template = None
    llm._loaded = type("Loaded", (), {"tokenizer": bare})()
    with pytest.raises(ValueError, match="no chat template"):
        magpie(2, llm=llm)


# ------------------------------------------------------------------------------------------- Evol-Instruct
@pytest.mark.parametrize(("evolved", "response", "reason"), [
    ("Explain tides, naming the two bodies that cause them.", "The moon and the sun pull the oceans.", None),
    ("", None, "empty_evolution"),
    ("#Rewritten Prompt#: Explain tides in detail.", None, "copies_prompt_template"),
    ("Rewrite the given prompt about tides so it is harder.", None, "copies_prompt_template"),
    ("  explain TIDES!  ", None, "no_information_gain"),  # the parent again
    ("Explain tides in three steps.", "I'm sorry, but I cannot answer that.", "sorry_short_response"),
    ("Explain tides in three steps.", "Sorry " + "word " * 80, None),  # "sorry" in a long answer is fine
    ("Explain tides in three steps.", "It is, and it was... the? (Of) all!", "only_stop_words_response"),
    ("Explain tides in three steps.", "?!...", "only_stop_words_response"),
])
def test_evol_elimination_rules_on_crafted_evolutions(evolved: str, response: str | None,
                                                      reason: str | None) -> None:
    assert evolution_elimination_reason("Explain tides.", evolved, response) == reason


def test_judge_answers_parse() -> None:
    assert [_judge_verdict(t) for t in ("Equal", "Not Equal", " not equal.", "Maybe", None)] == \
        ["equal", "not equal", "not equal", None, None]
    assert copies_template_words("the #Created Prompt# is") and not copies_template_words("a prompt")


@pytest.fixture(scope="module")
def evolved(tiny_path) -> Result:
    return evol_instruct(SEEDS[:4], rounds=2, response_temperature=0.7, seed=5, **TINY)


def test_evol_instruct_counts_every_elimination_and_keeps_survivors_with_responses(evolved) -> None:
    result = evolved
    accounted(result)
    assert result.report.rows_in == sum(r.rows_in for r in result.steps if r.step.endswith("evolve"))
    round_1 = [r for r in result.steps if r.step.startswith("round 1: ")]
    judged = round_1[2]
    expected = ["evolve", "rules (instruction)", "judge (information gain)", "responses", "rules (response)"]
    if judged.rows_out == 0:  # nothing survived the judge (the tiny model's rewrites are often truncated)
        expected.remove("responses")
    assert [r.step.split(": ")[1] for r in round_1] == expected
    assert set(result.dataset["mutation"] if len(result.dataset) else []) <= set(EVOL_IN_DEPTH + EVOL_IN_BREADTH)
    for row in result.dataset:
        assert row["generation"].strip() and row["origin"] in SEEDS
        assert evolution_elimination_reason(row["parent"], row["instruction"], row["generation"]) is None
    # failed evolutions go back to the pool: every round-2 parent is a seed that failed or was not tried, or a
    # round-1 survivor
    survivors_1 = {r["instruction"] for r in result.dataset if r["round"] == 1}
    failed_1 = {r["parent"] for r in result.dropped if r["round"] == 1}
    parents_2 = {r["parent"] for r in list(result.dataset) + list(result.dropped) if r["round"] == 2}
    assert parents_2 <= survivors_1 | failed_1
    assert len(parents_2) == len(survivors_1 | failed_1)


def test_evol_instruct_is_seeded_and_capped(evolved, tiny_path) -> None:
    capped = evol_instruct(SEEDS[:4], rounds=3, max_rows=2, response_temperature=0.7, seed=5, **TINY)
    accounted(capped)
    assert len(capped.dataset) <= 2
    first_round = [r for r in capped.steps if r.step == "round 1: evolve"][0]
    assert first_round.rows_in == 2
    # the same seed picks the same mutations: round 1 of the capped run is the uncapped run's first two rows
    picks = {r["parent"]: r["mutation"] for r in list(evolved.dataset) + list(evolved.dropped) if r["round"] == 1}
    capped_picks = {r["parent"]: r["mutation"] for r in list(capped.dataset) + list(capped.dropped) if r["round"] == 1}
    assert capped_picks == {k: picks[k] for k in SEEDS[:2]}
    with pytest.raises(ValueError, match="mutations='SHOUTING' is not one of"):
        evol_instruct(SEEDS, mutations=["SHOUTING"])


# --------------------------------------------------------------------------------------- responses and SFT
def test_generate_keeps_columns_and_names_the_answer_generation(tiny_path) -> None:
    result = generate([{"question": "Name a colour.", "topic": "art"}], column="question", temperature=0.7, **TINY)
    accounted(result)
    columns = set(result.dataset.column_names if len(result.dataset) else result.dropped.column_names)
    assert {"question", "topic"} <= columns and "response" not in columns
    assert len(result.dataset) == 0 or "generation" in columns
    with pytest.raises(ValueError, match="column="):
        generate([{"question": "Hi"}])


def test_to_sft_formats_and_reasons() -> None:
    rows = [{"instruction": "Hi", "generation": "Hello", "sys": "Be kind."},
            {"instruction": " ", "generation": "x", "sys": None}]
    result = to_sft(rows, system_column="sys")
    assert result.dataset.column_names == ["messages"]
    assert [m["role"] for m in result.dataset[0]["messages"]] == ["system", "user", "assistant"]
    assert result.report.dropped == {"missing_instruction": 1}
    pc = to_sft(rows, format="prompt_completion")
    assert pc.dataset.column_names == ["prompt", "completion"]
    assert pc.dataset[0]["completion"] == [{"role": "assistant", "content": "Hello"}]
    conversations = [{"c": [{"role": "user", "content": "A"}, {"role": "assistant", "content": "B"}]},
                     {"c": [{"role": "user", "content": "A"}]},
                     {"c": [{"role": "assistant", "content": "B"}, {"role": "user", "content": "A"}]}]
    multi = to_sft(conversations, messages_column="c")
    assert multi.report.dropped == {"missing_response": 1, "invalid_conversation": 1}
    with pytest.raises(ValueError, match="column 'generation'.*response_column"):
        to_sft([{"instruction": "a", "response": "b"}])
    with pytest.raises(ValueError, match="format"):
        to_sft(rows, format="chatml")


@pytest.mark.parametrize("fmt", ["messages", "prompt_completion"])
def test_sft_dataset_passes_trl_checks_and_trains_two_steps(fmt: str, tmp_path, tiny_path) -> None:
    """The produced dataset goes to TRL's SFTTrainer unchanged: TRL's own format checks, then 2 training steps."""
    from trl import SFTConfig, SFTTrainer
    from trl.data_utils import is_conversational

    rows = [{"instruction": s, "system_prompt": "You are a chef." if i % 2 else None} for i, s in enumerate(SEEDS[:4])]
    answers = generate(rows, allow_truncated=True, **TINY)  # the tiny model rarely ends: keep cut-off answers
    sft = to_sft(answers.rows, system_column="system_prompt", format=fmt).dataset
    assert len(sft) >= 2
    assert all(is_conversational(row) for row in sft)
    args = SFTConfig(output_dir=str(tmp_path), max_steps=2, per_device_train_batch_size=2, use_cpu=True, bf16=False,
                     activation_checkpointing=False,
                     report_to=[], save_strategy="no", logging_steps=1, max_length=128)
    trainer = SFTTrainer(model=str(tiny_path), args=args, train_dataset=sft)
    output = trainer.train()
    assert output.global_step == 2
    assert all(h["loss"] > 0 for h in trainer.state.log_history if "loss" in h)
