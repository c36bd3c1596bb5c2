"""Which model to use, and how to load it: hub models for learners, a tiny offline model for CI.

The whole course runs on one switch. ``resolve_model()`` answers, in this order: the ``model=`` argument, the
``SMOLSYNTH_MODEL`` environment variable, then the default of the hardware profile (a real hub model such as
``HuggingFaceTB/SmolLM2-360M-Instruct`` on a CPU). The name ``"smolsynth/tiny"`` is special: it is a tiny
causal LM (random weights, ~0.3M parameters) with a ChatML chat template, whose tokenizer is trained here on ``data/corpus.txt``.
It is built on first use, with no network, into the smolsynth cache, and the same seed always gives byte-identical
files. It writes nonsense, fast, which is what tests and CI need::

    >>> from smolsynth.models import load_model
    >>> model, tokenizer = load_model("smolsynth/tiny")
    >>> tokenizer.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False, add_generation_prompt=True)
    '<|im_start|>user\\nHi<|im_end|>\\n<|im_start|>assistant\\n'
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

TINY_MODEL = "smolsynth/tiny"
MODEL_ENV = "SMOLSYNTH_MODEL"
HOME_ENV = "SMOLSYNTH_HOME"
TINY_VERSION = 1  # bump when the architecture, corpus or template changes: old builds are then ignored

CHATML_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
"""The ChatML template (as used by Qwen2.5 and SmolLM2, without a default system prompt)."""

TINY_SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


class ModelNotAvailableError(RuntimeError):
    """A model cannot be loaded: not cached locally and the Hugging Face Hub is offline or unreachable."""


def smolsynth_home() -> Path:
    """The folder where smolsynth keeps built models and cached results (``$SMOLSYNTH_HOME``, else
    ``~/.cache/smolsynth``)."""
    return Path(os.environ.get(HOME_ENV) or Path.home() / ".cache" / "smolsynth").expanduser()


def is_tiny(model_id: str) -> bool:
    """True when ``model_id`` names the built-in tiny offline model."""
    return model_id.strip().lower() == TINY_MODEL


# --------------------------------------------------------------------------------------------------------- the hub
def hub_offline_requested() -> bool:
    """True when ``HF_HUB_OFFLINE`` (or the older ``TRANSFORMERS_OFFLINE``) asks for offline mode."""
    return any(os.environ.get(v, "").strip().lower() in {"1", "true", "yes", "on"}
               for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


@lru_cache(maxsize=1)
def hub_reachable(timeout: float = 1.5) -> bool:
    """Can this machine open a connection to the Hugging Face Hub? Answers in at most ~``timeout`` seconds.

    Returns False at once when offline mode is requested. The answer is cached for the life of the process.
    """
    if hub_offline_requested():
        return False
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        with socket.create_connection((endpoint.hostname or "huggingface.co", port), timeout=timeout):
            return True
    except OSError:
        return False


# ------------------------------------------------------------------------------------------------ choosing a model
def resolve_model(model: str | None = None, *, profile: Any = None, fallback_to_tiny: bool = False) -> str:
    """The model id to use: ``model`` if given, else ``$SMOLSYNTH_MODEL``, else the hardware profile's default.

    With ``fallback_to_tiny=True`` (the demo's choice), a hub model that cannot be had (hub unreachable and the
    model not in the local cache) is replaced by ``"smolsynth/tiny"``.

    >>> resolve_model("smolsynth/tiny")
    'smolsynth/tiny'
    """
    chosen = model or os.environ.get(MODEL_ENV) or None
    if chosen is None:
        if profile is None:
            from smolsynth.hardware import current_profile

            profile = current_profile()
        chosen = profile.model
    if fallback_to_tiny and not is_tiny(chosen) and not Path(chosen).is_dir():
        if not hub_reachable() and not _in_local_hub_cache(chosen):
            return TINY_MODEL
    return chosen


def _in_local_hub_cache(model_id: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(model_id, "config.json"), str)
    except Exception:  # an invalid id, for instance
        return False


# --------------------------------------------------------------------------------------------- the tiny model
def tiny_model_path(seed: int = 0) -> Path:
    """Path of the tiny offline model for ``seed``, building it first if it is not in the cache yet."""
    target = smolsynth_home() / "models" / f"tiny-v{TINY_VERSION}-seed{seed}"
    if not (target / "model.safetensors").exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".building-", dir=target.parent))
        try:
            build_tiny_model(staging, seed=seed)
            try:
                staging.rename(target)
            except OSError:  # another process finished first: its files are identical, keep them
                pass
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target


def build_tiny_model(path: str | os.PathLike, seed: int = 0) -> Path:
    """Build the tiny offline chat model into ``path`` and return it. No network; deterministic for a seed.

    A byte-level BPE tokenizer is trained on the corpus shipped in ``smolsynth/data``; the model is a 2-layer
    Llama-architecture decoder (hidden size 96, tied embeddings, about 0.3M parameters) with random weights drawn
    from ``seed``. The tokenizer carries a ChatML chat template and ``<|im_end|>`` as its end-of-turn token.
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    corpus = (Path(__file__).parent / "data" / "corpus.txt").read_text(encoding="utf-8")

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=1024,
        special_tokens=TINY_SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # every byte is encodable: JSON, code, any language
        show_progress=False,
    )
    bpe.train_from_iterator(corpus.splitlines(keepends=True), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        bos_token=None,
        model_max_length=1024,
        padding_side="left",
        chat_template=CHATML_TEMPLATE,
    )

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=96,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    config.name_or_path = TINY_MODEL
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.bos_token_id = None
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # a bar for a 1 MB file is noise
    try:
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    return out


# --------------------------------------------------------------------------------------------------- loading
def model_path(model_id: str) -> str:
    """A path or hub id ``from_pretrained`` can load: the tiny model's folder (built if needed) or ``model_id``."""
    return str(tiny_model_path()) if is_tiny(model_id) else model_id


def load_tokenizer(model_id: str):
    """Load the tokenizer of ``model_id`` (see :func:`load_model` for the offline rules)."""
    from transformers import AutoTokenizer

    return _from_pretrained(AutoTokenizer, model_id)


def load_model(model_id: str | None = None, *, dtype: str | None = None, device: str | None = None):
    """Load ``(model, tokenizer)`` for generation, on the profile's device and dtype unless given.

    Hub models are fetched when the hub is reachable; otherwise only the local cache is used, and a model that is not
    there raises :class:`ModelNotAvailableError` at once, naming the model and the offline switch.

    >>> model, tok = load_model("smolsynth/tiny")
    >>> model.num_parameters() < 1_000_000
    True
    """
    import torch
    from transformers import AutoModelForCausalLM

    from smolsynth.hardware import current_profile

    model_id = resolve_model(model_id)
    profile = current_profile()
    device = device or profile.device
    dtype = dtype or ("float32" if is_tiny(model_id) else profile.dtype)
    tokenizer = load_tokenizer(model_id)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    model = _from_pretrained(AutoModelForCausalLM, model_id, dtype=getattr(torch, dtype))
    return model.to(device).eval(), tokenizer


def _from_pretrained(cls: Any, model_id: str, **kwargs: Any):
    path = model_path(model_id)
    local = Path(path).is_dir()
    if local or hub_reachable():
        return cls.from_pretrained(path, **kwargs)
    try:
        return cls.from_pretrained(path, local_files_only=True, **kwargs)
    except (OSError, ValueError) as err:
        raise ModelNotAvailableError(
            f"Model {model_id!r} is not in the local cache and the Hugging Face Hub is "
            f"{'switched off (HF_HUB_OFFLINE=1)' if hub_offline_requested() else 'not reachable'}. "
            f"Use the built-in offline model instead: pass model={TINY_MODEL!r} or set {MODEL_ENV}={TINY_MODEL}; "
            f"or go online (unset HF_HUB_OFFLINE) and download {model_id!r} once."
        ) from err
