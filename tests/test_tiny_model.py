"""The tiny offline model: built with no network, byte-identical for a seed, a working chat model."""

from __future__ import annotations

import hashlib
from pathlib import Path

from conftest import run_python

BUILD_TWICE = """
import hashlib, pathlib
from smolsynth.models import build_tiny_model
def digest(d):
    return dict((p.name, hashlib.sha256(p.read_bytes()).hexdigest()) for p in sorted(pathlib.Path(d).iterdir()))
a = digest(build_tiny_model(r'TMP/a', seed=0))
b = digest(build_tiny_model(r'TMP/b', seed=0))
print('FILES', sorted(a))
print('IDENTICAL', a == b)
"""


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_same_seed_gives_byte_identical_files_with_the_network_cut(tmp_path):
    result = run_python(BUILD_TWICE.replace("TMP", str(tmp_path)), guard=True)
    assert result.returncode == 0, result.stderr
    assert "IDENTICAL True" in result.stdout
    for name in ("model.safetensors", "tokenizer.json", "config.json", "chat_template.jinja"):
        assert name in result.stdout
    assert "network_attempts=0" in result.stdout, result.stdout


def test_different_seed_gives_different_weights_same_tokenizer(tmp_path):
    from smolsynth.models import build_tiny_model

    a = _digests(build_tiny_model(tmp_path / "a", seed=0))
    b = _digests(build_tiny_model(tmp_path / "b", seed=1))
    assert a["model.safetensors"] != b["model.safetensors"]
    assert a["tokenizer.json"] == b["tokenizer.json"]


def test_tiny_model_is_a_small_chatml_chat_model_that_generates(tiny_path):
    from smolsynth.models import load_model

    model, tokenizer = load_model("smolsynth/tiny")
    assert 100_000 < model.num_parameters() < 1_000_000
    prompt = tokenizer.apply_chat_template([{"role": "system", "content": "Be brief."},
                                            {"role": "user", "content": "Hi"}],
                                           tokenize=False, add_generation_prompt=True)
    assert prompt == "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.padding_side == "left"
    # every special token is a single id, and any byte sequence round-trips (JSON, code, non-English text)
    for token in ("<|im_start|>", "<|im_end|>", "<|endoftext|>"):
        assert len(tokenizer.encode(token, add_special_tokens=False)) == 1
    text = '{"ratings": [4, 2], "note": "déjà vu — 東京"}'
    assert tokenizer.decode(tokenizer.encode(text, add_special_tokens=False)) == text
    inputs = tokenizer(prompt, return_tensors="pt")
    out = model.generate(**inputs, max_new_tokens=8, do_sample=False)
    assert out.shape[1] > inputs["input_ids"].shape[1]


def test_tiny_model_is_cached_and_reused(tiny_path):
    from smolsynth.models import tiny_model_path

    before = (tiny_path / "model.safetensors").stat().st_mtime_ns
    assert tiny_model_path() == tiny_path
    assert (tiny_path / "model.safetensors").stat().st_mtime_ns == before
