"""The real-model lane, notebooks: solution notebook 02 in strict fast mode on the embedded SmolLM2-135M, and checks
on the data it saves. ``make real-notebooks`` runs every solution notebook this way (notebook 01 alone ~14 minutes on
2 cores, which is why CI runs only this one and notebook 05, tests/test_real_classification.py)."""

from __future__ import annotations

import re

import pytest

from smolsynth import offline

pytestmark = pytest.mark.skipif(not offline.embedded_available(),
                                reason=f"the embedded model is not installed ({offline.INSTALL_HINT})")


def _answers_of(dataset, budget, tokenizer):
    """Every assistant text of an SFT (``messages``) or DPO (``chosen``/``rejected``) dataset, with a reason it
    could be garbage: cut off (as many tokens as the budget: the gate keeps only answers that ended by themselves,
    which are shorter), template scaffolding, or empty."""
    from smolsynth.gates import echoes_template

    texts = []
    for row in dataset:
        if "messages" in row:
            texts += [m["content"] for m in row["messages"] if m["role"] == "assistant"]
        else:
            texts += [row[col][-1]["content"] for col in ("chosen", "rejected")]
    bad = [(t, why) for t in texts for why, hit in (
        ("cut off", len(tokenizer(t, add_special_tokens=False)["input_ids"]) >= budget),
        ("template echo", echoes_template(t)), ("empty", not t.strip())) if hit]
    return texts, bad


def test_solution_notebook_02_on_the_real_model_saves_only_finished_clean_pairs(engine_home):
    """Notebook 02 (candidates -> EvolQuality -> judge -> pairs) in strict fast mode on SmolLM2-135M: fewer rows, a
    budget answers can finish in (256 tokens; ``course.fast_mode``'s ``tiny_model`` values are the tiny model's
    only), about 15 minutes on 2 shared cores. Every check must pass, and the pairs it saves for notebook 04 must be training data: no cut-off, scaffolding or empty text. (A row
    that breaks the gates is dropped before saving: tests/test_gates.py feeds such rows and sees them counted.)
    Notebook 01 costs about as much again; ``make real-notebooks`` runs them all."""
    import datasets

    from smolsynth.course import data_path
    from smolsynth.models import load_tokenizer
    from test_notebooks import REPO, SOLUTIONS, _report, nbval

    result = nbval([p for p in SOLUTIONS if p.name.startswith("02_")], strict=True, model=offline.EMBEDDED_MODEL,
                   timeout=1800, cell_timeout=900)
    assert result.returncode == 0, _report(result)
    budget = int(re.search(r"fast_mode\(.*?MAX_NEW_TOKENS=(\d+)", (REPO / "notebooks" / "src" /
                                                                    "02_preferences.py").read_text(), re.S).group(1))
    saved = datasets.load_from_disk(str(data_path("dpo")))
    texts, bad = _answers_of(saved, budget, load_tokenizer(offline.EMBEDDED_MODEL))
    print(f"notebook 02 on {offline.EMBEDDED_MODEL}: {len(saved)} pairs saved")
    assert texts, "notebook 02 saved no pairs"
    assert not bad, bad
