"""Which model to use, and how to load it: hub models for learners, a tiny offline model for CI.

It also keeps the loaded models of the process (:func:`get_loaded_model`, keyed on :func:`weights_fingerprint` for
a local folder, so that retrained weights are loaded again) and frees them (:func:`clear_model_cache`).

The whole course runs on one switch. ``resolve_model()`` answers, in this order: the ``model=`` argument, the
``SMOLSYNTH_MODEL`` environment variable, then the default of the hardware profile (a real hub model such as
``HuggingFaceTB/SmolLM2-135M-Instruct`` on a CPU). The name ``"smolsynth/tiny"`` is special: it is a tiny
causal LM (random weights, ~0.3M parameters) with a ChatML chat template, whose tokenizer is trained here on ``data/corpus.txt``.
It is built on first use, with no network, into the smolsynth cache, and the same seed always gives byte-identical
files. It writes nonsense, fast, which is what tests and CI need::

    >>> from smolsynth.models import load_model
    >>> model, tokenizer = load_model("smolsynth/tiny")
    >>> tokenizer.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False, add_generation_prompt=True)
    '<|im_start|>user\\nHi<|im_end|>\\n<|im_start|>assistant\\n'
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import tempfile
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import urlparse

from smolsynth.settings import HOME_ENV, MODEL_ENV, smolsynth_home  # noqa: F401  (re-exported: older imports)
from smolsynth.templates import CHATML_TEMPLATE

TINY_MODEL = "smolsynth/tiny"
TINY_EOS_TOKENS, TINY_EOS_WEIGHT, TINY_MIN_NEW_TOKENS = 120, 8.0, 4
"""Random weights almost never pick ``<|im_end|>`` (1 in 1024), so nothing the tiny model wrote would pass the
``truncated`` gate. Its end-of-turn output row points at the embeddings of 120 random ordinary tokens (word pieces, never
whitespace), with norm 8: it ends a turn soon after writing one of them. That alone made it end most turns at once after
a system prompt (31 of 32 empty answers), so its generation config also asks for at least 4 new tokens
(``min_new_tokens``; constrained generation sets it back to 0). Measured on 32 chat prompts at temperature 0.7 and 48
tokens: no empty answer; without a system prompt 25 of 32 end by themselves, with one 32 of 32 (5 to 34 tokens)."""
TINY_VERSION = 3  # bump when the architecture, corpus or template changes: old builds are then ignored

TINY_SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


class ModelNotAvailableError(RuntimeError):
    """A model cannot be loaded: not cached locally and the Hugging Face Hub is offline or unreachable."""


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
def resolve_model(model: str | None = None, *, profile: Any = None, offline_fallback: bool = True) -> str:
    """The model id to use: ``model`` if given, else ``$SMOLSYNTH_MODEL``, else the hardware profile's default.

    The profile's default is a hub model. When the hub cannot be reached (or ``HF_HUB_OFFLINE=1``) and that model is
    not in the local hub cache, the default becomes the embedded real model ``"smolsynth/smollm2-135m"``
    (:mod:`smolsynth.offline`), or the tiny one when the embedded model is not installed. A model you name yourself
    is never replaced (``offline_fallback=False`` keeps the profile's default too).

    >>> resolve_model("smolsynth/tiny")
    'smolsynth/tiny'
    """
    chosen = model or os.environ.get(MODEL_ENV) or None
    if chosen is not None:
        return chosen
    if profile is None:
        from smolsynth.hardware import current_profile

        profile = current_profile()
    chosen = profile.model
    if offline_fallback and not hub_reachable() and not _in_local_hub_cache(chosen):
        from smolsynth.offline import EMBEDDED_MODEL, embedded_available

        return EMBEDDED_MODEL if embedded_available() else TINY_MODEL
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
    return build_once(target, lambda folder: build_tiny_model(folder, seed=seed), marker="model.safetensors")


def build_once(target: Path, build: Callable[[Path], Any], *, marker: str) -> Path:
    """``target``, built first by ``build(folder)`` unless ``target/marker`` exists. The build runs in a staging
    folder beside ``target`` that is renamed into place, so a reader never sees half of it; when several processes
    race, the first rename wins and the others keep its (identical) files."""
    if not (target / marker).exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".building-", dir=target.parent))
        try:
            build(staging)
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
    Llama-architecture decoder (hidden size 96, about 0.4M parameters) with random weights drawn
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
        tie_word_embeddings=False,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    config.name_or_path = TINY_MODEL
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
        ordinary = [i for i in range(len(tokenizer)) if i not in set(tokenizer.all_special_ids)
                    and tokenizer.decode([i]).strip().isalnum()]  # words: an answer ends after some text
        pick = torch.randperm(len(ordinary))[:TINY_EOS_TOKENS].tolist()
        with torch.no_grad():  # see TINY_EOS_TOKENS: a model that ends its turns
            direction = model.model.embed_tokens.weight[[ordinary[i] for i in pick]].sum(0)
            model.lm_head.weight[tokenizer.eos_token_id] = TINY_EOS_WEIGHT * direction / direction.norm()
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.min_new_tokens = TINY_MIN_NEW_TOKENS
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
    """A path or hub id ``from_pretrained`` can load: the tiny model's folder (built if needed), the embedded model's
    folder (materialized if needed), or ``model_id``."""
    from smolsynth.offline import embedded_model_path, is_embedded

    if is_tiny(model_id):
        return str(tiny_model_path())
    if is_embedded(model_id):
        return str(embedded_model_path())
    return model_id


def load_tokenizer(model_id: str):
    """Load the tokenizer of ``model_id`` (see :func:`load_model` for the offline rules)."""
    from transformers import AutoTokenizer

    return _from_pretrained(AutoTokenizer, model_id)


def load_model(model_id: str | None = None, *, dtype: str | None = None, device: str | None = None):
    """Load ``(model, tokenizer)`` for generation, on the profile's device and dtype unless given.

    The tokenizer is a fresh one, the caller's own: it gets a pad token (EOS when it has none) and left padding,
    ready for batched ``generate``. Hub models are fetched when the hub is reachable; otherwise only the local cache
    is used, and a model that is not there raises :class:`ModelNotAvailableError` at once, naming the model and the
    offline switch.

    >>> model, tok = load_model("smolsynth/tiny")
    >>> model.num_parameters() < 1_000_000
    True
    """
    from smolsynth.hardware import current_profile

    model_id = resolve_model(model_id)
    profile = current_profile()
    device = device or profile.device
    dtype = dtype or ("float32" if is_tiny(model_id) else profile.dtype)
    tokenizer = load_tokenizer(model_id)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return _load_weights(model_id, dtype=dtype, device=device), tokenizer


def _load_weights(model_id: str, *, dtype: str, device: str):
    import torch
    from transformers import AutoModelForCausalLM

    model = _from_pretrained(AutoModelForCausalLM, model_id, dtype=getattr(torch, dtype))
    return model.to(device).eval()


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


# ----------------------------------------------------------------------------------------- weights fingerprint
_WEIGHT_PATTERNS = ("*.safetensors", "*.bin", "*.gguf", "*.pt", "config.json", "generation_config.json",
                    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja")


def weights_fingerprint(model_id: str) -> str | None:
    """A short hash of what a local model folder holds right now, or None for a hub id (not a folder).

    Made of the names, sizes, modification times (ns) and inodes of the folder's weights, config and tokenizer files
    (no file is read), so it is cheap, and it changes when a model is retrained or re-saved into the same folder.
    ``"smolsynth/tiny"`` stands for its built folder.

    >>> weights_fingerprint("HuggingFaceTB/SmolLM2-135M-Instruct") is None
    True
    """
    path = Path(model_path(model_id))
    if not path.is_dir():
        return None
    entries = []
    for pattern in _WEIGHT_PATTERNS:
        for f in path.glob(pattern):
            try:
                st = f.stat()
            except OSError:  # removed while we looked: the next call sees the new state
                continue
            entries.append(f"{f.name}:{st.st_size}:{st.st_mtime_ns}:{st.st_ino}")
    return hashlib.sha256("|".join(sorted(set(entries))).encode()).hexdigest()[:16]


# ------------------------------------------------------------------------------------ the process-wide model cache
@dataclass
class LoadedModel:
    """A model and tokenizer loaded once per process (see :func:`get_loaded_model`). Shared: never mutate them."""

    model_id: str
    device: str
    dtype: str
    tokenizer: Any
    model: Any = None
    fingerprint: Optional[str] = None  # weights_fingerprint(model_id) when loaded (None: a hub model)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _grammar: Any = None

    @property
    def eos_ids(self) -> List[int]:
        """Every token id that ends a turn: the tokenizer's EOS and the model's generation-config EOS ids."""
        ids: List[int] = []
        if self.tokenizer.eos_token_id is not None:
            ids.append(int(self.tokenizer.eos_token_id))
        cfg = getattr(self.model, "generation_config", None)
        extra = getattr(cfg, "eos_token_id", None) if cfg is not None else None
        for i in extra if isinstance(extra, (list, tuple)) else [extra]:
            if i is not None and int(i) not in ids:
                ids.append(int(i))
        return ids

    def __reduce__(self) -> Any:
        # Pickled (Ray, spawn) or deep-copied, a loaded model travels as a reference: reloaded (once) where it lands.
        return (_reload, (self.model_id, self.dtype, self.device))

    def __deepcopy__(self, memo: Dict[int, Any]) -> "LoadedModel":
        return self  # one loaded model per process, shared

    @property
    def grammar(self) -> Any:
        """The xgrammar tools for this model (:class:`smolsynth.grammar.GrammarTools`), built on first use."""
        if self._grammar is None:
            from smolsynth.grammar import GrammarTools

            self._grammar = GrammarTools(self)
        return self._grammar


_LOADED: Dict[Tuple[str, str, str, Optional[str]], LoadedModel] = {}
_LOADED_LOCK = threading.Lock()


def get_loaded_model(model_id: str, *, dtype: str, device: str) -> LoadedModel:
    """The process-wide loaded model for ``(model_id, dtype, device)``, loading it on first use.

    For a local folder the cache is keyed on :func:`weights_fingerprint` too: after new weights are saved into the
    folder (retraining into the same ``output_dir``), the next call loads them, and the old copy is forgotten.
    """
    fp = weights_fingerprint(model_id)
    key = (model_id, dtype, device, fp)
    with _LOADED_LOCK:
        if key not in _LOADED:
            for stale in [k for k in _LOADED if k[:3] == key[:3]]:
                del _LOADED[stale]
            _LOADED[key] = _load(model_id, dtype=dtype, device=device, fingerprint=fp)
        return _LOADED[key]


def _reload(model_id: str, dtype: str, device: str) -> LoadedModel:
    return get_loaded_model(model_id, dtype=dtype, device=device)


def clear_model_cache() -> int:
    """Forget every loaded model (frees memory once nothing else holds them). Returns how many were dropped."""
    with _LOADED_LOCK:
        n = len(_LOADED)
        _LOADED.clear()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass
    return n


def _load(model_id: str, *, dtype: str, device: str, fingerprint: Optional[str] = None) -> LoadedModel:
    """Load for the cache: the tokenizer exactly as saved (nothing set on it: the engine pads by hand)."""
    try:  # transformers 5 shows a "Loading weights" bar for every load: keep the learner's cell quiet
        from transformers.utils import logging as hf_logging

        previous = hf_logging._tqdm_active
        hf_logging._tqdm_active = False
    except (ImportError, AttributeError):
        hf_logging, previous = None, None
    try:
        tokenizer = load_tokenizer(model_id)
        model = _load_weights(model_id, dtype=dtype, device=device)
    finally:
        if hf_logging is not None:
            hf_logging._tqdm_active = previous
    return LoadedModel(model_id, device, dtype, tokenizer, model, fingerprint=fingerprint)
