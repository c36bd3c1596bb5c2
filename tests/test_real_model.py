"""The real-model lane: what only real weights can show, on the embedded SmolLM2-135M-Instruct (smolsynth.offline).

The tiny model's text is noise, so on it a judge that parses proves nothing about what the judge writes. Here the
constrained UltraFeedback judge rates the 12 hand-written probes in both orders (``judge_sanity``): every judgment must
parse into one rating per candidate, no rationale may be template scaffolding or a bare number, and the agreement in
each order is printed (``pytest -s``; recorded in benchmarks/README.md). The other half of the lane is the demo on the
same model: the demo (tests/test_demo.py: Magpie -> two candidates -> judge -> SFT -> DPO, with the saved data
checked) and notebook 02 (tests/test_real_notebooks.py). About 3.5 minutes on 2 cores.
"""

from __future__ import annotations

import re

import pytest

from smolsynth import offline

pytestmark = pytest.mark.skipif(not offline.embedded_available(),
                                reason=f"the embedded model is not installed ({offline.INSTALL_HINT})")


@pytest.fixture(scope="module")
def sanity():
    from smolsynth.ultrafeedback import judge_sanity

    return judge_sanity(model=offline.EMBEDDED_MODEL, max_rationale_chars=60, progress=False, cache=False)


def test_the_real_judge_parses_every_probe_in_both_orders(sanity):
    print(sanity, sanity.by_kind)
    assert sanity.report.rows_in == 24 and sanity.report.dropped == {}, sanity.report
    assert len(sanity.rows) == 24
    assert all(r["good_rating"] in range(1, 6) and r["bad_rating"] in range(1, 6) for r in sanity.rows)
    assert set(sanity.agreement) == {"good_first", "bad_first"}
    assert all(0.0 <= v <= 1.0 for v in sanity.agreement.values())


def test_the_real_judge_writes_words_not_placeholders():
    """The rationales themselves: on SmolLM2-135M an unconstrained-enough grammar gave "[Rationale]", "2. [Rationale]"
    and "1" as reasons; the grammar now asks for a letter first and no brackets."""
    from smolsynth.gates import echoes_template
    from smolsynth.ultrafeedback import judge, judge_probes

    probes = judge_probes()[:4]
    rows = [{"instruction": p["instruction"], "generations": [p["good"], p["bad"]]} for p in probes]
    judged = judge(rows, model=offline.EMBEDDED_MODEL, max_rationale_chars=60, progress=False, cache=False)
    assert judged.report.dropped == {} and len(judged.rows) == 4
    for row in judged.rows:
        assert len(row["rationales"]) == 2
        for text in row["rationales"]:
            assert not echoes_template(text) and re.match(r"[A-Za-z]", text) and len(text) >= 12, text


def test_on_the_real_model_the_student_lacks_the_trait_and_the_teacher_writes_finished_answers():
    """The student (no context) never opens with the trait; the teacher (rule, demonstrations, primed answer) writes
    a finished answer after the opening, without copying its demonstrations or leaking template tokens."""
    from smolsynth import distillation as dist
    from smolsynth.distillation import OPENING

    EMBEDDED_MODEL = offline.EMBEDDED_MODEL
    prompts = list(dist.HELD_OUT_PROMPTS[:4])
    before = dist.trait_rate(EMBEDDED_MODEL, prompts, progress=False)
    assert before.rate == 0.0, before.table()
    teacher = dist.teacher_answers(prompts, model=EMBEDDED_MODEL, samples=2, progress=False)
    assert len(teacher.rows) >= 3, teacher.report
    for row in teacher.rows:
        answer = row["messages"][1]["content"]
        rest = OPENING.strip(answer)
        assert OPENING.shows(answer) and len(rest.split()) >= 4, answer  # an answer after the opening
        assert "Great question!" not in rest and "<|" not in answer, answer  # no echo of the demonstrations


def _benchmark_prompts(n: int):
    """The chat prompts of benchmarks/bench_generation.py (the engine's speed is measured on them)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_generation.py"
    spec = importlib.util.spec_from_file_location("bench_generation", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.chat_prompts(n)


def test_on_the_real_model_greedy_engine_outputs_equal_raw_generate_and_sampling_repeats():
    """What any speed-up of the engine must keep (issue 14): at its default batch, greedy decoding writes what plain
    ``model.generate`` writes, token for token, for the same bucket of left-padded prompts; and the same seed samples
    the same texts twice, on a fresh LLM too."""
    import torch

    from smolsynth.llm import LocalLLM

    chats = _benchmark_prompts(6)
    llm = LocalLLM(offline.EMBEDDED_MODEL)
    llm.load()
    engine = llm.generate(chats, max_new_tokens=24, temperature=0)
    model, tok = llm._loaded.model, llm._loaded.tokenizer
    texts = [tok.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in chats]
    ids = [tok(t, add_special_tokens=False)["input_ids"] for t in texts]
    order = sorted(range(len(ids)), key=lambda k: (len(ids[k]), k))  # the engine's bucket: all 6, sorted by length
    width = max(len(x) for x in ids)
    pad = tok.pad_token_id
    input_ids = torch.tensor([[pad] * (width - len(ids[k])) + ids[k] for k in order])
    attention = torch.tensor([[0] * (width - len(ids[k])) + [1] * len(ids[k]) for k in order])
    with torch.inference_mode():
        out = model.generate(input_ids=input_ids, attention_mask=attention, max_new_tokens=24, do_sample=False,
                             temperature=None, top_p=None, top_k=None, pad_token_id=pad)
    raw = {k: tok.decode(row[width:], skip_special_tokens=True) for k, row in zip(order, out.tolist())}
    assert [o["generations"][0] for o in engine] == [raw[k] for k in range(len(chats))]
    assert all(o["generations"][0].strip() for o in engine)  # real words, not an empty string on both sides

    sampled = llm.generate(chats[:3], max_new_tokens=16, temperature=0.7)
    again = LocalLLM(offline.EMBEDDED_MODEL).generate(chats[:3], max_new_tokens=16, temperature=0.7)
    assert [o["generations"] for o in sampled] == [o["generations"] for o in again]
