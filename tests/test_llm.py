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
    model = llm._loaded.model
    shapes = []
    real_generate = model.generate

    def spy(*args, **kwargs):  # the real generate runs; we only record the batch shapes
        shapes.append(tuple(kwargs["input_ids"].shape))
        return real_generate(*args, **kwargs)

    monkeypatch.setattr(model, "generate", spy)
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
    free = llm.generate(CHATS[:8], max_new_tokens=24, temperature=0)
    # choose a stop string that the free (greedy) generation of the first prompt really contains
    text = free[0]["generations"][0]
    assert len(text) > 6
    stop = text[3:5]
    cut = llm.generate(CHATS[:8], max_new_tokens=24, temperature=0, stop=[stop])
    first = cut[0]["generations"][0]
    assert stop not in first and text.startswith(first)
    assert cut[0]["statistics"]["output_tokens"][0] < free[0]["statistics"]["output_tokens"][0]
    kept = llm.generate(CHATS[:8], max_new_tokens=24, temperature=0, stop=[stop], include_stop_str_in_output=True)
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
