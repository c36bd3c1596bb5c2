"""LocalLLM: a distilabel LLM on a real (tiny) transformers model, batched for real."""

from __future__ import annotations

import pytest

CHATS = [[{"role": "user", "content": f"Tell me about topic number {i}" + " please" * (i % 5)}] for i in range(20)]


def test_is_a_distilabel_llm_with_the_magpie_mixin(tiny_llm_factory):
    from distilabel.models.llms.base import LLM
    from distilabel.models.mixins.magpie import MagpieChatTemplateMixin

    llm = tiny_llm_factory()
    assert isinstance(llm, LLM) and isinstance(llm, MagpieChatTemplateMixin)
    assert llm.model_name == "smolsynth/tiny"
    assert llm.dump()["type_info"] == {"module": "smolsynth.llm", "name": "LocalLLM"}


def test_model_none_resolves_through_the_environment(monkeypatch, tiny_path):
    from smolsynth.llm import LocalLLM

    monkeypatch.setenv("SMOLSYNTH_MODEL", "smolsynth/tiny")
    assert LocalLLM().model == "smolsynth/tiny"


def test_generate_returns_distilabel_structure_with_token_statistics(tiny_llm_factory):
    llm = tiny_llm_factory()
    llm.load()
    out = llm.generate(CHATS[:3], num_generations=2, max_new_tokens=7)
    assert len(out) == 3
    tok = llm.tokenizer
    prompts = [tok.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in CHATS[:3]]
    prompt_lengths = [len(tok(p, add_special_tokens=False)["input_ids"]) for p in prompts]
    for o, n_prompt in zip(out, prompt_lengths):
        assert len(o["generations"]) == 2 and all(isinstance(g, str) for g in o["generations"])
        assert o["statistics"]["input_tokens"] == [n_prompt, n_prompt]
        assert all(1 <= n <= 7 for n in o["statistics"]["output_tokens"])


def test_batches_are_real_and_sized_by_batch_size(tiny_llm_factory, monkeypatch):
    llm = tiny_llm_factory(batch_size=8)
    llm.load()
    import smolsynth.llm as llm_module

    shapes = []
    real_decode = llm_module.decode

    def spy(model, prompts, **kwargs):  # the real decoding loop runs; we only record the batch shapes
        shapes.append((len(prompts), max(len(p) for p in prompts)))
        return real_decode(model, prompts, **kwargs)

    monkeypatch.setattr(llm_module, "decode", spy)
    out = llm.generate(CHATS, num_generations=2, max_new_tokens=3)
    assert len(out) == 20 and all(len(o["generations"]) == 2 for o in out)
    assert [s[0] for s in shapes] == [8, 8, 8, 8, 8]  # 40 sequences in 5 calls, not 40 calls
    # prompts are bucketed by length: the padded width of a bucket is its longest prompt, and widths grow
    widths = [s[1] for s in shapes]
    assert widths == sorted(widths) and widths[0] < widths[-1]


def test_same_seed_same_outputs_other_seed_other_outputs(tiny_llm_factory):
    a = tiny_llm_factory(seed=1).generate(CHATS[:6], max_new_tokens=8, temperature=1.0)
    b = tiny_llm_factory(seed=1).generate(CHATS[:6], max_new_tokens=8, temperature=1.0)
    c = tiny_llm_factory(seed=2).generate(CHATS[:6], max_new_tokens=8, temperature=1.0)
    texts = lambda out: [o["generations"] for o in out]  # noqa: E731
    assert texts(a) == texts(b)
    assert texts(a) != texts(c)


def test_greedy_is_deterministic_and_num_generations_sample_differently(tiny_llm_factory):
    llm = tiny_llm_factory()
    greedy = llm.generate(CHATS[:2], num_generations=2, max_new_tokens=8, temperature=0)
    assert greedy[0]["generations"][0] == greedy[0]["generations"][1]
    sampled = llm.generate(CHATS[:2], num_generations=4, max_new_tokens=8, temperature=1.0)
    assert len(set(sampled[0]["generations"])) > 1


def test_stop_strings_cut_the_output(tiny_llm_factory):
    llm = tiny_llm_factory()
    free = llm.generate(CHATS[:8], max_new_tokens=24, temperature=0, ignore_eos=True)  # no early EOS: a long text
    # choose a stop string that the free (greedy) generation of the first prompt really contains
    text = free[0]["generations"][0]
    assert len(text) > 6
    stop = text[3:5]
    cut = llm.generate(CHATS[:8], max_new_tokens=24, temperature=0, stop=[stop], ignore_eos=True)
    first = cut[0]["generations"][0]
    assert stop not in first and text.startswith(first)
    assert cut[0]["statistics"]["output_tokens"][0] < free[0]["statistics"]["output_tokens"][0]
    kept = llm.generate(CHATS[:8], max_new_tokens=24, temperature=0, stop=[stop], include_stop_str_in_output=True,
                        ignore_eos=True)
    assert kept[0]["generations"][0].endswith(stop)


def test_ignore_eos_generates_exactly_max_new_tokens(tiny_llm_factory):
    out = tiny_llm_factory().generate(CHATS[:4], max_new_tokens=9, ignore_eos=True)
    assert [o["statistics"]["output_tokens"][0] for o in out] == [9, 9, 9, 9]


def test_one_loaded_model_is_shared_by_every_llm_in_the_process(tiny_llm_factory):
    a, b = tiny_llm_factory(), tiny_llm_factory(seed=5)
    a.load()
    b.load()
    assert a._loaded is b._loaded and a._loaded.model is b._loaded.model


def test_dtype_not_torch_dtype_and_clear_errors(tiny_path):
    from smolsynth.llm import LocalLLM

    with pytest.raises(TypeError, match="dtype="):
        LocalLLM("smolsynth/tiny", torch_dtype="float16")
    with pytest.raises(ValueError, match="dtype"):
        LocalLLM("smolsynth/tiny", dtype="fp8")
    with pytest.raises(ValueError):
        LocalLLM("smolsynth/tiny", batch_size=0)
    llm = LocalLLM("smolsynth/tiny", dtype="float32", device="cpu")
    llm.load()
    assert str(llm._loaded.model.dtype) == "torch.float32"
    with pytest.raises(ValueError, match="num_generations"):
        llm.generate(CHATS[:1], num_generations=0)


def test_usage_counts_tokens(tiny_llm_factory):
    llm = tiny_llm_factory()
    before = llm.usage
    out = llm.generate(CHATS[:3], max_new_tokens=5)
    after = llm.usage
    assert after["output_tokens"] - before["output_tokens"] == sum(o["statistics"]["output_tokens"][0] for o in out)
    assert after["input_tokens"] - before["input_tokens"] == sum(o["statistics"]["input_tokens"][0] for o in out)


def test_default_batch_size_follows_the_profile():
    from smolsynth.hardware import Hardware, choose_profile
    from smolsynth.llm import TINY_BATCH_SIZE, default_batch_size

    t4 = choose_profile(Hardware(device="cuda", gpu_name="Tesla T4", capability=(7, 5), gpu_memory_gb=15.0))
    assert default_batch_size("HuggingFaceTB/SmolLM2-1.7B-Instruct", t4) == t4.generation_batch_size
    assert default_batch_size("smolsynth/tiny", t4) == TINY_BATCH_SIZE


def test_a_loaded_llm_pickles_and_copies_as_a_reference_to_the_loaded_model(tiny_llm_factory):
    import copy
    import pickle

    llm = tiny_llm_factory()
    llm.load()
    clone = pickle.loads(pickle.dumps(llm))  # Ray and spawn pickle steps; the model is reloaded (here: reused)
    assert clone._loaded is llm._loaded
    assert copy.deepcopy(llm)._loaded is llm._loaded
    assert clone.generate(CHATS[:1], max_new_tokens=3)[0]["statistics"]["output_tokens"][0] >= 1


def test_same_inputs_same_texts_in_any_order_of_calls_and_on_a_fresh_llm(tiny_llm_factory):
    """Outside the runner a call's seed depends on seed, a constant salt and the content only, not on earlier calls."""
    llm = tiny_llm_factory(seed=3)
    first = llm.generate(CHATS[:5], num_generations=2, max_new_tokens=8, temperature=1.0)
    llm.generate(CHATS[5:9], max_new_tokens=4, temperature=1.0)  # another call in between changes nothing
    second = llm.generate(CHATS[:5], num_generations=2, max_new_tokens=8, temperature=1.0)
    fresh = tiny_llm_factory(seed=3).generate(CHATS[:5], num_generations=2, max_new_tokens=8, temperature=1.0)
    texts = lambda out: [o["generations"] for o in out]  # noqa: E731
    assert texts(first) == texts(second) == texts(fresh)
    assert any(len(set(o["generations"])) == 2 for o in first)  # copies of one prompt still sample differently
    assert not hasattr(llm, "_calls")


def test_engine_argument_is_refused_with_a_pointer_to_distilabels_vllm(tiny_path):
    from smolsynth.llm import LocalLLM

    with pytest.raises(TypeError, match=r"distilabel\.models\.llms import vLLM"):
        LocalLLM("smolsynth/tiny", engine="vllm")
    assert "engine" not in LocalLLM.model_fields


def test_finish_reasons_length_stop_string_and_eos(tiny_llm_factory, monkeypatch):
    llm = tiny_llm_factory()
    for max_new_tokens in (2, 24):
        out = llm.generate(CHATS[:8], num_generations=2, max_new_tokens=max_new_tokens, temperature=1.0)
        pairs = [pair for o in out for pair in zip(o["statistics"]["output_tokens"], o["statistics"]["finish_reasons"])]
        assert {reason for _, reason in pairs} <= {"stop", "length"} and ("length" in {r for _, r in pairs})
        assert all(n == max_new_tokens for n, reason in pairs if reason == "length")  # cut: the whole budget
        assert all(reason == "stop" for n, reason in pairs if n < max_new_tokens)  # ended early: by itself
    forced = llm.generate(CHATS[:4], max_new_tokens=3, ignore_eos=True)
    assert all(o["statistics"]["finish_reasons"] == ["length"] for o in forced)
    free = llm.generate(CHATS[:4], max_new_tokens=24, temperature=0, ignore_eos=True)
    stop = free[0]["generations"][0][3:5]
    stopped = llm.generate(CHATS[:4], max_new_tokens=24, temperature=0, stop=[stop], ignore_eos=True)
    assert stopped[0]["statistics"]["finish_reasons"] == ["stop"]
    assert stopped[0]["statistics"]["output_tokens"][0] < 24
    for o in stopped[1:]:  # the others: "stop" exactly when they were cut by the stop string too
        assert o["statistics"]["finish_reasons"] == ["length" if o["statistics"]["output_tokens"][0] == 24 else "stop"]

    # EOS, made certain: the first row's second token is replaced by EOS
    import smolsynth.llm as llm_module

    eos, real_decode = llm._loaded.eos_ids[0], llm_module.decode

    def eos_after_two(model, prompts, **kwargs):
        out = real_decode(model, prompts, **{**kwargs, "min_new_tokens": kwargs["max_new_tokens"]})  # full length
        out[0].tokens, out[0].reason = out[0].tokens[:1] + [eos], "eos"
        return out

    monkeypatch.setattr(llm_module, "decode", eos_after_two)
    ended = llm.generate(CHATS[:1], max_new_tokens=6, temperature=0)
    assert ended[0]["statistics"]["finish_reasons"] == ["stop"] and ended[0]["statistics"]["output_tokens"] == [2]


def test_a_completed_grammar_is_a_stop(tiny_llm_factory):
    llm = tiny_llm_factory(structured_output={"format": "regex", "schema": "(yes|no)"})
    out = llm.generate(CHATS[:3], max_new_tokens=8, temperature=1.0)
    assert all(o["generations"][0] in ("yes", "no") for o in out)
    assert all(o["statistics"]["finish_reasons"] == ["stop"] for o in out)


def test_text_generation_rows_carry_finish_reasons_in_their_metadata(engine_home, tiny_llm_factory):
    from distilabel.steps.tasks import TextGeneration

    from smolsynth.runner import run

    rows = [{"instruction": f"Say {i}."} for i in range(3)]
    cut = run(TextGeneration(llm=tiny_llm_factory(generation_kwargs={"max_new_tokens": 2, "ignore_eos": True})), rows,
              keep_metadata=True, progress=False, allow_truncated=True)
    stats = [r["distilabel_metadata"]["statistics_text_generation_0"] for r in cut.dataset.to_list()]
    assert [(s["output_tokens"], s["finish_reasons"]) for s in stats] == [(2, "length")] * 3  # one per row
    grammar = tiny_llm_factory(structured_output={"format": "regex", "schema": "(yes|no)"},
                               generation_kwargs={"max_new_tokens": 8})
    done = run(TextGeneration(llm=grammar), rows, keep_metadata=True, progress=False)
    assert [r["distilabel_metadata"]["statistics_text_generation_0"]["finish_reasons"]
            for r in done.dataset.to_list()] == ["stop"] * 3


def test_moved_names_are_re_exported_from_llm():
    import smolsynth.grammar
    import smolsynth.llm as llm
    import smolsynth.models
    import smolsynth.templates
    import smolsynth.ultrafeedback

    homes = {"magpie_prompt": smolsynth.templates, "render_chat": smolsynth.templates,
             "MAGPIE_PRESETS": smolsynth.templates, "ultrafeedback_regex": smolsynth.ultrafeedback,
             "ultrafeedback_schema": smolsynth.ultrafeedback, "normalize_structured_output": smolsynth.grammar,
             "clear_model_cache": smolsynth.models, "get_loaded_model": smolsynth.models,
             "LoadedModel": smolsynth.models}
    for name, home in homes.items():
        assert getattr(llm, name) is getattr(home, name), name


def test_importing_llm_leaves_no_pydantic_warning_and_no_warning_filter():
    from conftest import run_python

    code = ("import warnings\nbefore = list(warnings.filters)\nwarnings.simplefilter('error')\n"
            "before = list(warnings.filters)\nimport smolsynth.llm\nassert warnings.filters == before\nprint('ok')")
    result = run_python(code)
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr[-2000:]


def test_presence_penalty_lowers_each_generated_token_once_and_never_the_prompt(tiny_llm_factory):
    import torch

    from smolsynth.decoding import Sampling, _Penalties

    class Model:  # what _Penalties reads of a model: the vocabulary size
        def get_output_embeddings(self):
            return torch.nn.Linear(1, 6, bias=False)

    penalties = _Penalties(Sampling(presence_penalty=2.0), [[5], [5]], Model(), "cpu")
    rows = torch.tensor([0, 1])
    for tokens in ([1, 3], [1, 4], [2, 4]):  # prompt of 1 token (5), then 3 generated tokens per row
        penalties.record(torch.tensor(tokens), rows)
    out = penalties.apply(torch.zeros((2, 6)), rows)
    assert out[0].tolist() == [0.0, -2.0, -2.0, 0.0, 0.0, 0.0]  # token 1 appeared twice: penalised once
    assert out[1].tolist() == [0.0, 0.0, 0.0, -2.0, -2.0, 0.0]  # the prompt's token 5 is not penalised
    llm = tiny_llm_factory()
    free = llm.generate(CHATS[:2], max_new_tokens=16, temperature=0, ignore_eos=True)
    penalised = llm.generate(CHATS[:2], max_new_tokens=16, temperature=0, ignore_eos=True, presence_penalty=50.0)
    assert [o["generations"] for o in free] != [o["generations"] for o in penalised]
