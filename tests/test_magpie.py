"""Magpie prompts derived from real chat templates (ChatML, Llama 3, Qwen2.5), written into local tokenizers."""

from __future__ import annotations

from pathlib import Path

import pytest

import trl

TEMPLATES = Path(trl.__file__).parent / "chat_templates"  # real model templates, shipped with TRL
SYSTEM = [{"role": "system", "content": "You are a chemistry tutor."}]


def _tokenizer_with(tmp_path: Path, template_file: str | None, special: dict | None = None):
    """The tiny tokenizer, saved locally with a real chat template and the model's special tokens, reloaded."""
    from transformers import AutoTokenizer

    from smolsynth.models import load_tokenizer

    tok = load_tokenizer("smolsynth/tiny")
    if special:
        tok.add_special_tokens(special)
    if template_file:
        tok.chat_template = (TEMPLATES / template_file).read_text()
    folder = tmp_path / (template_file or "chatml")
    tok.save_pretrained(folder)
    return AutoTokenizer.from_pretrained(folder)


@pytest.fixture
def chatml(tmp_path, tiny_path):
    return _tokenizer_with(tmp_path, None)


@pytest.fixture
def llama3(tmp_path, tiny_path):
    return _tokenizer_with(tmp_path, "llama3.jinja", {
        "bos_token": "<|begin_of_text|>",
        "additional_special_tokens": ["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]})


@pytest.fixture
def qwen25(tmp_path, tiny_path):
    return _tokenizer_with(tmp_path, "qwen2_5.jinja")


def test_chatml_with_system_prompt_ends_with_the_user_header_and_has_no_assistant_header(chatml):
    from smolsynth.templates import magpie_prompt

    prompt = magpie_prompt(chatml, SYSTEM)
    assert prompt.endswith("<|im_start|>user\n")
    assert "<|im_start|>assistant" not in prompt
    assert prompt == "<|im_start|>system\nYou are a chemistry tutor.<|im_end|>\n<|im_start|>user\n"
    assert magpie_prompt(chatml) == "<|im_start|>user\n"


def test_distilabel_mixin_gets_it_wrong_and_we_do_not(chatml):
    """The bug we fix: distilabel renders the system prompt with a generation prompt, then appends the template."""
    from distilabel.models.mixins.magpie import MagpieChatTemplateMixin

    distilabel_style = chatml.apply_chat_template(SYSTEM, tokenize=False, add_generation_prompt=True)
    mixin = MagpieChatTemplateMixin(use_magpie_template=True, magpie_pre_query_template="qwen2")
    assert "<|im_start|>assistant\n<|im_start|>user\n" in mixin.apply_magpie_pre_query_template(distilabel_style, SYSTEM)


def test_llama3_has_exactly_one_bos(llama3):
    from smolsynth.templates import magpie_prompt

    header = "<|start_header_id|>user<|end_header_id|>\n\n"
    bare = magpie_prompt(llama3)
    assert bare == "<|begin_of_text|>" + header
    with_system = magpie_prompt(llama3, SYSTEM)
    assert with_system.startswith("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n")
    assert with_system.endswith("<|eot_id|>" + header)
    assert with_system.count("<|begin_of_text|>") == 1
    assert "assistant" not in with_system
    # the explicit distilabel preset gives the same prompt: its BOS is dropped after the rendered system turn
    assert magpie_prompt(llama3, SYSTEM, pre_query_template="llama3") == with_system
    # and the tokenized prompt has one BOS id (the chat template wrote it; the tokenizer must not add another)
    from smolsynth.llm import LocalLLM

    llm = LocalLLM("smolsynth/tiny", use_magpie_template=True)
    llm._loaded = type("L", (), {"tokenizer": llama3})()  # the llama3 tokenizer in place of the tiny one
    ids = llm._encode([llm.prepare_input(SYSTEM)])[0]
    assert ids.count(llama3.bos_token_id) == 1


def test_qwen25_gets_its_default_system_prompt(qwen25):
    from smolsynth.templates import magpie_prompt

    bare = magpie_prompt(qwen25)
    assert bare == ("<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant."
                    "<|im_end|>\n<|im_start|>user\n")
    custom = magpie_prompt(qwen25, SYSTEM)
    assert "You are Qwen" not in custom and custom.endswith("<|im_end|>\n<|im_start|>user\n")
    assert "<|im_start|>assistant" not in custom


def test_follow_up_turn_after_an_assistant_message(chatml, llama3):
    from smolsynth.templates import magpie_prompt

    convo = SYSTEM + [{"role": "user", "content": "What is pH?"}, {"role": "assistant", "content": "A scale."}]
    prompt = magpie_prompt(chatml, convo)
    assert prompt.endswith("<|im_start|>assistant\nA scale.<|im_end|>\n<|im_start|>user\n")
    assert prompt.count("<|im_start|>assistant") == 1
    assert magpie_prompt(llama3, convo).count("<|begin_of_text|>") == 1
    with pytest.raises(ValueError, match="user turn"):
        magpie_prompt(chatml, convo[:2])


def test_llm_prepare_input_uses_magpie_only_when_the_next_turn_is_the_users(tiny_llm_factory):
    llm = tiny_llm_factory(use_magpie_template=True)
    assert llm.prepare_input(SYSTEM).endswith("<|im_start|>user\n")
    answer = llm.prepare_input(SYSTEM + [{"role": "user", "content": "Hi"}])
    assert answer.endswith("<|im_start|>assistant\n")
    explicit = tiny_llm_factory(use_magpie_template=True, magpie_pre_query_template="chatml")
    assert explicit.prepare_input(SYSTEM) == llm.prepare_input(SYSTEM)


def test_magpie_task_runs_through_the_runner(engine_home, tiny_llm_factory):
    from distilabel.steps.tasks import Magpie

    from smolsynth.runner import run

    task = Magpie(llm=tiny_llm_factory(generation_kwargs={"max_new_tokens": 10, "temperature": 1.0}), n_turns=1)
    result = run(task, 6, progress=False)
    assert result.report.rows_in == 6
    assert result.report.rows_out + result.report.dropped_total == 6
    assert set(result.dataset.column_names) >= {"instruction", "response"} or result.report.rows_out == 0
    rows = result.dataset.to_list()
    assert len({r["instruction"] for r in rows}) == len(rows)  # identical empty inputs still give varied rows
    with_system = run(Magpie(llm=tiny_llm_factory(), n_turns=1, only_instruction=True),
                      [{"system_prompt": "You write riddles."}] * 3, progress=False)
    assert with_system.report.rows_out + with_system.report.dropped_total == 3


def test_magpie_presets_hold_distilabels_templates_and_chatml():
    from distilabel.models.mixins.magpie import MAGPIE_PRE_QUERY_TEMPLATES

    from smolsynth.templates import MAGPIE_PRESETS

    assert {k: MAGPIE_PRESETS[k] for k in MAGPIE_PRE_QUERY_TEMPLATES} == MAGPIE_PRE_QUERY_TEMPLATES
    assert MAGPIE_PRESETS["chatml"] == "<|im_start|>user\n"


def test_templates_and_settings_import_nothing_heavy():
    from conftest import run_python

    code = ("import sys\nimport smolsynth.templates, smolsynth.settings\n"
            "print(sorted(m for m in ('torch', 'distilabel', 'transformers') if m in sys.modules))")
    result = run_python(code)
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stderr[-2000:]


def test_tag_quality_tags_every_instruction_with_a_magpie_tag_and_keeps_only_the_asked_ones(engine_home):
    from smolsynth.instructions import INPUT_QUALITY, tag_quality

    rows = [{"instruction": text, "generation": "An answer."} for text in (
        "How do I repot a cactus without hurting my hands?", "hm", "Explain photosynthesis to a child.",
        "asdf qwer zxcv", "What is the capital of Australia?", "Give three tips for a job interview.")]
    everything = tag_quality(rows, keep=INPUT_QUALITY, progress=False)
    assert everything.report.rows_in == 6 and everything.report.dropped == {}  # constrained: every answer parses
    tags = {r["instruction"]: r["input_quality"] for r in everything.rows}
    assert set(tags.values()) <= set(INPUT_QUALITY) and len(tags) == 6
    assert all(r["generation"] == "An answer." for r in everything.rows)  # the tagger's own output is not a column
    assert not {"quality_answer", "model_name"} & set(everything.rows[0])
    strict = tag_quality(rows, keep=("good", "excellent"), progress=False)
    assert [r["instruction"] for r in strict.rows] == [t for t, q in tags.items() if q in ("good", "excellent")]
    assert {r["reason"] for r in strict.dropped_rows} <= {"low_input_quality"}
    assert [r["input_quality"] for r in strict.dropped_rows] == [q for q in tags.values()
                                                                 if q not in ("good", "excellent")]
    assert strict.report.rows_in == len(strict.rows) + len(strict.dropped_rows) == 6


@pytest.mark.parametrize(("kwargs", "message"), [({"keep": ("great",)}, "keep="), ({"keep": ()}, "keep="),
                                                 ({"data": [{"text": "hi"}]}, "'instruction' column")])
def test_tag_quality_refuses_bad_arguments_before_loading_a_model(kwargs, message, monkeypatch):
    import smolsynth.llm
    from smolsynth.instructions import tag_quality

    monkeypatch.setattr(smolsynth.llm.LocalLLM, "load", lambda self: pytest.fail("loaded a model"))
    with pytest.raises(ValueError, match=message):
        tag_quality(**{"data": [{"instruction": "Hi there, how are you?"}], **kwargs})
