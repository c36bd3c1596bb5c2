"""A distilabel LLM that runs a local model fast: real batching, seeds, stop strings, Magpie, constrained decoding.

distilabel's ``TransformersLLM`` calls ``generate()`` once per prompt, has no stop strings and renders Magpie prompts
with a dangling assistant header when there is a system prompt (DESIGN.md D1). :class:`LocalLLM` is a drop-in
replacement: any distilabel ``Task`` accepts it, inside the in-process runner (:mod:`smolsynth.runner`) or a
distilabel ``Pipeline``::

    >>> from smolsynth.llm import LocalLLM
    >>> llm = LocalLLM("smolsynth/tiny", generation_kwargs={"max_new_tokens": 8})  # what tasks pass to generate()
    >>> llm.load()
    >>> out = llm.generate([[{"role": "user", "content": "Hi"}]], num_generations=2, max_new_tokens=8)
    >>> len(out[0]["generations"]), sorted(out[0]["statistics"])
    (2, ['input_tokens', 'output_tokens'])

What it does, and how:

* **Batching.** Prompts are tokenized once, sorted by length and cut into buckets of ``batch_size`` sequences
  (``num_generations`` copies of a prompt count as sequences), left-padded, and sent to one ``model.generate`` call
  per bucket. The default batch size comes from the hardware profile (the tiny model uses 64: it costs nothing).
* **One loaded model per process.** Loaded ``(model, tokenizer)`` pairs are kept in a process-wide cache keyed by
  model id, dtype, device and engine, so every task, cell and call reuses them (:func:`clear_model_cache` frees them).
* **Seeds.** Sampling in a bucket is seeded from ``seed`` and the content of the bucket (and, inside the runner, the
  batch), so the same inputs give the same outputs, in any process, in any order of calls.
* **Magpie.** The pre-query prompt is derived from the tokenizer's own chat template (ChatML, Llama 3, Qwen2.5 with
  its default system prompt, ...) by rendering a conversation with a placeholder user turn and cutting at the
  placeholder: no dangling assistant header, no doubled BOS (:func:`magpie_prompt`). An explicit
  ``magpie_pre_query_template`` (``"llama3"``, ``"qwen2"``, ``"chatml"`` or a string) is honoured too.
* **Constrained decoding.** ``structured_output={"format": "json", "schema": {...}}`` or
  ``{"format": "regex", "schema": "..."}`` (distilabel's shape; also per input, as distilabel's tasks pass it)
  restricts every token through xgrammar, one grammar matcher per sequence. When a sequence is about to run out of
  ``max_new_tokens``, the remaining tokens are spent on the shortest way to close the structure, so the output
  still parses (a string may then be cut short). Works on CPU with the tiny random model.
* **vLLM.** ``engine="vllm"`` (or ``SMOLSYNTH_ENGINE=vllm``; ``"auto"`` picks vLLM on CUDA when it is installed)
  runs the same prompts through vLLM's engine, with vLLM's own structured outputs. CUDA only, never needed.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import threading
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Literal, Optional, Sequence, Tuple

from pydantic import PositiveInt, PrivateAttr, field_validator, model_validator

from smolsynth.verbosity import import_distilabel

_llm_base = import_distilabel("distilabel.models.llms.base")
_magpie = import_distilabel("distilabel.models.mixins.magpie")
_runtime = import_distilabel("distilabel.mixins.runtime_parameters")

ENGINE_ENV = "SMOLSYNTH_ENGINE"
TINY_BATCH_SIZE = 64
DTYPES = ("float32", "float16", "bfloat16")
MAGPIE_PRESETS = {**_magpie.MAGPIE_PRE_QUERY_TEMPLATES, "chatml": "<|im_start|>user\n"}
_SENTINEL = "SMOLSYNTHMAGPIEQUERY7f3a"
# Characters tried, in this order, to close a structure when the token budget runs out (see _closing_path).
_CLOSING_ORDER = "\n\"]}10,: [{-.tfnae" + "".join(chr(c) for c in range(32, 127))


# ------------------------------------------------------------------------------------------------- loaded models
@dataclass
class LoadedModel:
    """A model and tokenizer loaded once per process (see :func:`get_loaded_model`)."""

    model_id: str
    engine: str
    device: str
    dtype: str
    tokenizer: Any
    model: Any = None  # transformers model, or a vllm.LLM
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
        return (_reload, (self.model_id, self.dtype, self.device, self.engine))

    def __deepcopy__(self, memo: Dict[int, Any]) -> "LoadedModel":
        return self  # one loaded model per process, shared

    @property
    def grammar(self) -> "_GrammarTools":
        if self._grammar is None:
            self._grammar = _GrammarTools(self)
        return self._grammar


_LOADED: Dict[Tuple[str, str, str, str], LoadedModel] = {}
_LOADED_LOCK = threading.Lock()


def get_loaded_model(model_id: str, *, dtype: str, device: str, engine: str = "transformers") -> LoadedModel:
    """The process-wide loaded model for ``(model_id, dtype, device, engine)``, loading it on first use."""
    key = (model_id, dtype, device, engine)
    with _LOADED_LOCK:
        if key not in _LOADED:
            _LOADED[key] = _load(model_id, dtype=dtype, device=device, engine=engine)
        return _LOADED[key]


def _reload(model_id: str, dtype: str, device: str, engine: str) -> LoadedModel:
    return get_loaded_model(model_id, dtype=dtype, device=device, engine=engine)


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


def _load(model_id: str, *, dtype: str, device: str, engine: str) -> LoadedModel:
    from smolsynth.models import load_model, load_tokenizer, model_path

    if engine == "vllm":
        import vllm

        tokenizer = load_tokenizer(model_id)
        llm = vllm.LLM(model=model_path(model_id), dtype=dtype, gpu_memory_utilization=0.6)
        return LoadedModel(model_id, engine, device, dtype, tokenizer, llm)
    try:  # transformers 5 shows a "Loading weights" bar for every load: keep the learner's cell quiet
        from transformers.utils import logging as hf_logging

        previous = hf_logging._tqdm_active
        hf_logging._tqdm_active = False
    except (ImportError, AttributeError):
        hf_logging, previous = None, None
    try:
        model, tokenizer = load_model(model_id, dtype=dtype, device=device)
    finally:
        if hf_logging is not None:
            hf_logging._tqdm_active = previous
    return LoadedModel(model_id, engine, device, dtype, tokenizer, model)


def default_batch_size(model_id: str, profile: Any = None) -> int:
    """Sequences per ``generate()`` call when none is given: the hardware profile's, 64 for the tiny model."""
    from smolsynth.models import is_tiny

    if is_tiny(model_id):
        return TINY_BATCH_SIZE
    if profile is None:
        from smolsynth.hardware import current_profile

        profile = current_profile()
    return int(profile.generation_batch_size)


# ------------------------------------------------------------------------------------------------------- Magpie
def render_chat(tokenizer: Any, messages: Sequence[Dict[str, str]], *, add_generation_prompt: bool,
                chat_template: Optional[str] = None) -> str:
    """``tokenizer.apply_chat_template`` as text (``chat_template`` overrides the tokenizer's without changing it)."""
    kwargs = {"chat_template": chat_template} if chat_template else {}
    return tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=add_generation_prompt,
                                         **kwargs)


def magpie_prompt(tokenizer: Any, messages: Sequence[Dict[str, str]] = (), *,
                  pre_query_template: Optional[str] = None, chat_template: Optional[str] = None) -> str:
    """The Magpie prompt that makes a chat model write the next *user* turn after ``messages``.

    Without ``pre_query_template`` it is derived from the chat template: ``messages`` plus a placeholder user turn
    are rendered (no generation prompt) and the text is cut right before the placeholder. The result is exactly what
    the model saw before user text in training: for ChatML with a system prompt it ends with
    ``<|im_start|>user\\n`` and has no assistant header; Qwen2.5's template adds its default system prompt when there
    is none; Llama 3 gets one ``<|begin_of_text|>``. With an explicit template, ``messages`` are rendered without a
    generation prompt and the template is appended (its BOS dropped when the rendered part already has one).

    >>> from smolsynth.models import load_tokenizer
    >>> magpie_prompt(load_tokenizer("smolsynth/tiny"), [{"role": "system", "content": "Be brief."}])
    '<|im_start|>system\\nBe brief.<|im_end|>\\n<|im_start|>user\\n'
    """
    messages = [dict(m) for m in messages]
    if messages and messages[-1].get("role") == "user":
        raise ValueError("magpie_prompt(messages=...) must not end with a user turn: the model is asked to write it. "
                         "Drop the last message, or use a normal chat prompt to answer it.")
    if pre_query_template is None:
        if not (chat_template or getattr(tokenizer, "chat_template", None)):
            raise ValueError("This tokenizer has no chat template, so no Magpie pre-query template can be derived. "
                             "Pass magpie_pre_query_template='llama3' / 'qwen2' / 'chatml' or the template text.")
        text = render_chat(tokenizer, messages + [{"role": "user", "content": _SENTINEL}],
                           add_generation_prompt=False, chat_template=chat_template)
        cut = text.rfind(_SENTINEL)
        if cut < 0:
            raise ValueError("The chat template does not show the user's message verbatim; pass "
                             "magpie_pre_query_template= explicitly.")
        return text[:cut]
    template = MAGPIE_PRESETS.get(pre_query_template, pre_query_template)
    rendered = render_chat(tokenizer, messages, add_generation_prompt=False, chat_template=chat_template) \
        if messages else ""
    bos = getattr(tokenizer, "bos_token", None)
    if rendered and bos and template.startswith(bos) and rendered.startswith(bos):
        template = template[len(bos):]
    return rendered + template


# ------------------------------------------------------------------------------------------ constrained decoding
def normalize_structured_output(spec: Optional[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """distilabel's ``structured_output`` dict in a canonical, JSON-serializable form (or None).

    ``format`` is ``"json"`` (``schema``: a JSON schema dict, its JSON text, or a pydantic model class) or
    ``"regex"`` (``schema``: a pattern). A missing format means json for dicts/models and regex for strings that are
    not JSON.
    """
    if spec is None:
        return None
    if not isinstance(spec, dict) or "schema" not in spec:
        raise ValueError(f"structured_output={spec!r} is not understood: pass {{'format': 'json', 'schema': "
                         "{...}} or {'format': 'regex', 'schema': '<pattern>'}.")
    schema = spec["schema"]
    fmt = spec.get("format")
    if isinstance(schema, type) and hasattr(schema, "model_json_schema"):
        schema = schema.model_json_schema()
    if fmt is None:
        fmt = "json"
        if isinstance(schema, str):
            try:
                json.loads(schema)
            except ValueError:
                fmt = "regex"
    if fmt not in ("json", "regex"):
        raise ValueError(f"structured_output format {fmt!r} is not supported: use 'json' or 'regex'.")
    if fmt == "json" and isinstance(schema, str):
        schema = json.loads(schema)
    if fmt == "regex" and not isinstance(schema, str):
        raise ValueError("structured_output with format 'regex' needs the pattern as a string in 'schema'.")
    return {"format": fmt, "schema": schema}


class _GrammarTools:
    """xgrammar objects for one tokenizer: the compiler (with its cache) and byte -> single-byte-token ids."""

    def __init__(self, loaded: LoadedModel) -> None:
        import xgrammar as xgr

        self.xgr = xgr
        config = loaded.model.config
        vocab_size = getattr(config, "vocab_size", None) or config.get_text_config().vocab_size
        self.info = xgr.TokenizerInfo.from_huggingface(loaded.tokenizer, vocab_size=vocab_size,
                                                       stop_token_ids=loaded.eos_ids)
        self.vocab_size = vocab_size
        self.compiler = xgr.GrammarCompiler(self.info)
        self.stop_id = loaded.eos_ids[0]
        byte_token: Dict[int, int] = {}
        for token_id, raw in enumerate(self.info.decoded_vocab):
            if len(raw) == 1 and raw[0] not in byte_token and token_id not in self.info.special_token_ids:
                byte_token[raw[0]] = token_id
        self.byte_token = byte_token
        self.closing = [byte_token[ord(c)] for c in dict.fromkeys(_CLOSING_ORDER) if ord(c) in byte_token]
        self.closing += [t for b, t in sorted(byte_token.items()) if b >= 128]  # to finish a multi-byte character
        # Special tokens (<|im_start|>, <|endoftext|>, ...) decode to text that a grammar may accept inside a string;
        # they are never part of structured output, so they are banned, except the stop tokens that end it.
        tok = loaded.tokenizer
        special = set(getattr(tok, "all_special_ids", []) or [])
        special |= {i for i, t in getattr(tok, "added_tokens_decoder", {}).items() if getattr(t, "special", False)}
        self.banned = sorted(i for i in special - set(loaded.eos_ids) if i < vocab_size)
        # JSON text never holds a raw control character (xgrammar's JSON grammar lets some through inside strings)
        self.control = sorted(i for i, raw in enumerate(self.info.decoded_vocab)
                              if i < vocab_size and any(b < 0x20 for b in raw) and i not in special)
        control = set(self.control)
        self.closing_json = [t for t in self.closing if t not in control]
        self._compiled: Dict[str, Any] = {}
        self._lock = threading.Lock()
        self._tokenizer = loaded.tokenizer

    def encode(self, text: str) -> List[int]:
        return list(self._tokenizer(text, add_special_tokens=False)["input_ids"])

    def compile(self, spec: Dict[str, Any]) -> Any:
        key = json.dumps(spec, sort_keys=True)
        with self._lock:
            if key not in self._compiled:
                if spec["format"] == "json":
                    self._compiled[key] = self.compiler.compile_json_schema(json.dumps(spec["schema"]),
                                                                            any_whitespace=False)
                else:
                    self._compiled[key] = self.compiler.compile_regex(spec["schema"])
            return self._compiled[key]


def _allowed(bitmask_row: List[int], token_id: int) -> bool:
    return bool(bitmask_row[token_id >> 5] & (1 << (token_id & 31)))


def _closing_path(tools: _GrammarTools, matcher: Any, limit: int, json_mode: bool = False) -> Optional[List[int]]:
    """Tokens (single bytes, then the stop token) that finish ``matcher``'s grammar soon, or None if not found.

    Greedy on a fork of the matcher: follow the grammar's forced text (jump-forward) when there is one, else take
    the first allowed byte in a closing-friendly order (newline, quote, ``]``, ``}``, digits, ...).
    """
    xgr = tools.xgr
    fork = matcher.fork()
    bitmask = xgr.allocate_token_bitmask(1, tools.vocab_size)
    path: List[int] = []
    while len(path) < limit:
        if fork.is_completed():
            return path + [tools.stop_id]
        forced = fork.find_jump_forward_string()
        if forced:
            # the tokenizer's own tokens for the forced text (fewest tokens), else byte by byte
            trial, tokens = fork.fork(), tools.encode(forced)
            if tokens and all(trial.accept_token(t) for t in tokens):
                fork = trial
                path.extend(tokens)
                continue
            for b in forced.encode("utf-8"):
                token = tools.byte_token.get(b)
                if token is None or not fork.accept_token(token):
                    return None
                path.append(token)
            continue
        fork.fill_next_token_bitmask(bitmask, 0)
        row = bitmask[0].tolist()
        for token in tools.closing_json if json_mode else tools.closing:
            if _allowed(row, token):
                fork.accept_token(token)
                path.append(token)
                break
        else:
            return None
    return None


class GrammarLogitsProcessor:
    """A transformers logits processor that keeps each sequence inside its grammar (None = unconstrained).

    One xgrammar matcher per row of the batch; rows may have different grammars. Near the end of the token budget a
    row whose structure is still open is steered along the shortest closing path, so that it parses.
    """

    def __init__(self, tools: _GrammarTools, grammars: Sequence[Any], *, prompt_length: int,
                 max_new_tokens: int, formats: Optional[Sequence[Optional[str]]] = None) -> None:
        import torch

        xgr = tools.xgr
        self.tools = tools
        self.matchers = [xgr.GrammarMatcher(g) if g is not None else None for g in grammars]
        self.json_rows = [f == "json" for f in (formats or [None] * len(grammars))]
        # tokens a constrained row may never write: special tokens (all rows), control characters (JSON rows)
        self.ban = torch.zeros((len(grammars), tools.vocab_size), dtype=torch.bool)
        for i, m in enumerate(self.matchers):
            if m is not None:
                self.ban[i, tools.banned] = True
                if self.json_rows[i]:
                    self.ban[i, tools.control] = True
        self.active = [m is not None for m in self.matchers]
        self.forced: List[List[int]] = [[] for _ in grammars]
        self.next_check = [max_new_tokens] * len(grammars)
        self.prompt_length = prompt_length
        self.max_new_tokens = max_new_tokens
        self.bitmask = xgr.allocate_token_bitmask(len(grammars), tools.vocab_size)  # all allowed

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        step = input_ids.shape[1] - self.prompt_length
        remaining = self.max_new_tokens - step
        last = input_ids[:, -1].tolist() if step > 0 else None
        force_now: Dict[int, int] = {}
        for i, matcher in enumerate(self.matchers):
            if not self.active[i]:
                continue
            if last is not None and (matcher.is_terminated() or not matcher.accept_token(last[i])):
                self.active[i] = False  # finished (EOS, or stopped by a stop string and padded)
                self.bitmask[i].fill_(-1)
                continue
            if matcher.is_terminated():
                self.active[i] = False
                continue
            if not self.forced[i] and remaining <= self.next_check[i]:
                path = _closing_path(self.tools, matcher, limit=remaining, json_mode=self.json_rows[i])
                if path is not None and len(path) + 2 >= remaining:
                    self.forced[i] = path
                elif path is not None:
                    self.next_check[i] = (remaining + len(path)) // 2 + 1
                else:
                    self.next_check[i] = remaining - 1
            if self.forced[i]:
                force_now[i] = self.forced[i].pop(0)
            matcher.fill_next_token_bitmask(self.bitmask, i)
        device = scores.device
        if device.type == "cuda":
            self.tools.xgr.apply_token_bitmask_inplace(scores, self.bitmask.to(device))
        else:
            cpu = scores.to("cpu") if device.type != "cpu" else scores
            self.tools.xgr.apply_token_bitmask_inplace(cpu, self.bitmask)
            scores = cpu.to(device) if device.type != "cpu" else cpu
        if self.ban.device != scores.device:
            self.ban = self.ban.to(scores.device)
        scores = scores.masked_fill(self.ban[:, :scores.shape[1]], -float("inf"))
        for i, token in force_now.items():
            keep = scores[i, token].clone()
            scores[i] = -float("inf")
            scores[i, token] = torch.where(torch.isfinite(keep), keep, torch.zeros_like(keep))
        return scores


class _StopStrings:
    """Stop a row once its *generated* text contains a stop string.

    transformers' own ``stop_strings`` also match across the prompt boundary (a prompt ending in a newline plus a
    generated newline "contains" ``"\\n\\n"``), which ends generations after one token.
    """

    def __init__(self, tokenizer: Any, stops: List[str], *, prompt_length: int) -> None:
        self.tokenizer = tokenizer
        self.stops = stops
        self.prompt_length = prompt_length
        self.window = 2 * max(len(s) for s in stops) + 4

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        generated = input_ids[:, self.prompt_length:]
        if generated.shape[1] == 0:
            return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        texts = self.tokenizer.batch_decode(generated[:, -self.window:].tolist(), skip_special_tokens=True)
        return torch.tensor([any(s in t for s in self.stops) for t in texts], dtype=torch.bool,
                            device=input_ids.device)


# --------------------------------------------------------------------------------------------------- the LLM
@dataclass
class _Sequence:
    input_index: int
    prompt_ids: List[int]
    spec: Optional[Dict[str, Any]]
    text: str = ""
    output_tokens: int = 0


# distilabel's RuntimeParameter carries Field(default=None) inside Annotated: pydantic warns about it once, at class
# creation. The warning is about distilabel's typing, not about anything a learner can act on.
with warnings.catch_warnings():
    warnings.simplefilter("ignore")

    class LocalLLM(_llm_base.LLM, _magpie.MagpieChatTemplateMixin):
        """A distilabel ``LLM`` backed by a local transformers model (or vLLM), batched for real.

        Args:
            model: hub id, local folder or ``"smolsynth/tiny"``; ``None`` resolves through
                :func:`smolsynth.models.resolve_model` (``$SMOLSYNTH_MODEL``, then the hardware profile's default).
            dtype: ``"float32"``, ``"float16"`` or ``"bfloat16"`` (never ``torch_dtype``); default from the profile.
            device: ``"cpu"``, ``"cuda"``, ``"mps"``; default from the profile.
            batch_size: sequences per ``generate()`` call; default from the profile (64 for the tiny model).
            seed: base seed of all sampling.
            structured_output: ``{"format": "json", "schema": {...}}`` or ``{"format": "regex", "schema": "..."}``.
            magpie_pre_query_template: None (derive from the chat template), ``"llama3"``, ``"qwen2"``, ``"chatml"``
                or the template text.
            chat_template: a Jinja chat template to use instead of the tokenizer's.
            engine: ``"transformers"`` (default, or ``$SMOLSYNTH_ENGINE``), ``"vllm"`` or ``"auto"``.
            generation_kwargs: defaults for :meth:`generate` (``max_new_tokens``, ``temperature``, ``stop``, ...).

        >>> from distilabel.steps.tasks import TextGeneration  # doctest: +SKIP
        >>> task = TextGeneration(llm=LocalLLM("smolsynth/tiny", generation_kwargs={"max_new_tokens": 16}))  # doctest: +SKIP
        """

        model: Optional[str] = None
        dtype: Optional[str] = None
        device: Optional[str] = None
        batch_size: Optional[PositiveInt] = None
        seed: int = 0
        engine: Optional[Literal["transformers", "vllm", "auto"]] = None
        chat_template: Optional[str] = None
        structured_output: Optional[_runtime.RuntimeParameter[Dict[str, Any]]] = None

        _loaded: Optional[LoadedModel] = PrivateAttr(default=None)
        _usage: Dict[str, int] = PrivateAttr(default_factory=lambda: {"input_tokens": 0, "output_tokens": 0,
                                                                       "sequences": 0})
        _calls: int = PrivateAttr(default=0)
        _salt: Optional[str] = PrivateAttr(default=None)

        def __init__(self, model: Optional[str] = None, /, **data: Any) -> None:
            if "torch_dtype" in data:
                raise TypeError("LocalLLM takes dtype=..., not torch_dtype= (deprecated in transformers 5): "
                                f"use LocalLLM(dtype={data['torch_dtype']!r}).")
            if model is not None:
                if data.get("model") is not None:
                    raise TypeError("LocalLLM got the model twice: pass it positionally or as model=..., not both.")
                data["model"] = model
            super().__init__(**data)

        # ------------------------------------------------------------------------------------------ validation
        @field_validator("model")
        @classmethod
        def _resolve_model(cls, value: Optional[str]) -> str:
            from smolsynth.models import resolve_model

            return resolve_model(value)

        @field_validator("dtype")
        @classmethod
        def _check_dtype(cls, value: Optional[str]) -> Optional[str]:
            if value is not None and value not in DTYPES:
                raise ValueError(f"dtype={value!r} is not one of {DTYPES}; e.g. LocalLLM(dtype='float32') on a CPU.")
            return value

        @field_validator("structured_output")
        @classmethod
        def _check_structured_output(cls, value: Optional[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
            return normalize_structured_output(value)

        @field_validator("magpie_pre_query_template")
        @classmethod
        def magpie_pre_query_template_validator(cls, value: Optional[str]) -> Optional[str]:
            """Presets ``"llama3"``, ``"qwen2"``, ``"chatml"`` become their text; ``None``/``"auto"``: derive it."""
            if value in (None, "auto"):
                return None
            return MAGPIE_PRESETS.get(value, value)

        @model_validator(mode="after")
        def use_magpie_template_validation(self) -> "LocalLLM":
            """Unlike distilabel's mixin, Magpie needs no explicit template here: it is derived from the chat template."""
            return self

        # ---------------------------------------------------------------------------------------------- loading
        @property
        def model_name(self) -> str:
            return str(self.model)

        @property
        def resolved_engine(self) -> str:
            """The engine that runs (``"transformers"`` or ``"vllm"``)."""
            engine = self.engine or os.environ.get(ENGINE_ENV) or "transformers"
            if engine not in ("transformers", "vllm", "auto"):
                raise ValueError(f"engine={engine!r} (or ${ENGINE_ENV}) must be 'transformers', 'vllm' or 'auto'.")
            if engine == "auto":
                vllm_ok = importlib.util.find_spec("vllm") is not None
                engine = "vllm" if vllm_ok and self.resolved_device == "cuda" else "transformers"
            return engine

        @property
        def resolved_device(self) -> str:
            if self.device:
                return self.device
            from smolsynth.hardware import current_profile

            return current_profile().device

        @property
        def resolved_dtype(self) -> str:
            from smolsynth.models import is_tiny

            if self.dtype:
                return self.dtype
            if is_tiny(self.model_name) or self.resolved_device == "cpu":
                return "float32"
            from smolsynth.hardware import current_profile

            return current_profile().dtype

        @property
        def effective_batch_size(self) -> int:
            """Sequences per ``generate()`` call: ``batch_size`` or the default for this model and machine."""
            return int(self.batch_size or default_batch_size(self.model_name))

        def load(self) -> None:
            """Load (or reuse) the model and tokenizer; cheap after the first time in a process."""
            engine = self.resolved_engine
            if engine == "vllm" and self.resolved_device != "cuda":
                raise ValueError("engine='vllm' needs a CUDA GPU; use engine='transformers' here.")
            self._loaded = get_loaded_model(self.model_name, dtype=self.resolved_dtype, device=self.resolved_device,
                                            engine=engine)
            super().load()

        def unload(self) -> None:
            """Keep the model in the process-wide cache (notebooks reuse it); see :func:`clear_model_cache`."""
            self._loaded = None

        @property
        def tokenizer(self) -> Any:
            if self._loaded is None:
                self.load()
            return self._loaded.tokenizer

        @property
        def usage(self) -> Dict[str, int]:
            """Tokens read and written by this LLM so far: ``input_tokens``, ``output_tokens``, ``sequences``."""
            return dict(self._usage)

        @contextmanager
        def seeded(self, salt: str) -> Iterator[None]:
            """Seed every sampling inside the block from ``salt`` (the runner uses one salt per batch)."""
            previous, self._salt = self._salt, salt
            try:
                yield
            finally:
                self._salt = previous

        # ---------------------------------------------------------------------------------------------- prompts
        def prepare_input(self, input: Any) -> str:
            """The prompt text for one distilabel input (a list of chat messages, or already a string)."""
            if isinstance(input, str):
                return input
            messages = list(input)
            tok = self.tokenizer
            if self.use_magpie_template and (not messages or messages[-1]["role"] != "user"):
                return magpie_prompt(tok, messages, pre_query_template=self.magpie_pre_query_template,
                                     chat_template=self.chat_template)
            if not (self.chat_template or getattr(tok, "chat_template", None)):
                return "\n\n".join(m["content"] for m in messages)
            return render_chat(tok, messages, add_generation_prompt=True, chat_template=self.chat_template)

        def _encode(self, prompts: List[str]) -> List[List[int]]:
            tok = self.tokenizer
            templated = bool(self.chat_template or getattr(tok, "chat_template", None))
            # The chat template already writes BOS where the model wants it: adding it again doubles it (Llama 3).
            return tok(prompts, add_special_tokens=not templated)["input_ids"]

        # ------------------------------------------------------------------------------------------- generation
        def generate(  # type: ignore[override]
            self,
            inputs: List[Any],
            num_generations: int = 1,
            max_new_tokens: int = 128,
            temperature: float = 0.7,
            top_p: float = 1.0,
            top_k: int = 0,
            do_sample: bool = True,
            repetition_penalty: float = 1.0,
            stop: Optional[List[str]] = None,
            ignore_eos: bool = False,
            include_stop_str_in_output: bool = False,
        ) -> List[Dict[str, Any]]:
            """Generate ``num_generations`` texts per input, batched.

            Args:
                inputs: chat message lists, ``(messages, structured_output)`` tuples (distilabel's structured input),
                    or prompt strings.
                num_generations: texts per input.
                max_new_tokens: token budget per text.
                temperature: 0 (or ``do_sample=False``) means greedy.
                top_p, top_k: nucleus / top-k sampling (``top_k=0``: off).
                repetition_penalty: 1.0 is off.
                stop: strings that end a text (cut from the output unless ``include_stop_str_in_output``).
                ignore_eos: keep generating to ``max_new_tokens`` (benchmarks).

            Returns:
                One ``{"generations": [...], "statistics": {"input_tokens": [...], "output_tokens": [...]}}`` per input.
            """
            if num_generations < 1:
                raise ValueError(f"num_generations={num_generations} must be >= 1.")
            if max_new_tokens < 1:
                raise ValueError(f"max_new_tokens={max_new_tokens} must be >= 1.")
            if isinstance(stop, str):
                stop = [stop]
            if self._loaded is None:
                self.load()
            sequences = self._sequences(inputs, num_generations)
            if ignore_eos and any(s.spec is not None for s in sequences):
                raise ValueError("ignore_eos=True cannot be combined with structured_output: the grammar ends with EOS.")
            salt = self._salt if self._salt is not None else f"call-{self._calls}"
            self._calls += 1
            settings = dict(max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, top_k=top_k,
                            do_sample=do_sample and temperature > 0, repetition_penalty=repetition_penalty,
                            stop=list(stop or []), ignore_eos=ignore_eos,
                            include_stop_str_in_output=include_stop_str_in_output)
            if sequences:
                if self._loaded.engine == "vllm":
                    self._generate_vllm(sequences, salt, settings)
                else:
                    self._generate_transformers(sequences, salt, settings)
            outputs: List[Dict[str, Any]] = []
            for i in range(len(inputs)):
                mine = sequences[i * num_generations:(i + 1) * num_generations]
                n_in = len(mine[0].prompt_ids) if mine else 0
                outputs.append({"generations": [s.text for s in mine],
                                "statistics": {"input_tokens": [n_in] * num_generations,
                                               "output_tokens": [s.output_tokens for s in mine]}})
                self._usage["input_tokens"] += n_in * num_generations
                self._usage["output_tokens"] += sum(s.output_tokens for s in mine)
                self._usage["sequences"] += num_generations
            return outputs

        def _sequences(self, inputs: List[Any], num_generations: int) -> List[_Sequence]:
            prompts, specs = [], []
            for item in inputs:
                messages, spec = item if isinstance(item, tuple) else (item, None)
                prompts.append(self.prepare_input(messages))
                specs.append(normalize_structured_output(spec) if spec is not None else self.structured_output)
            ids = self._encode(prompts) if prompts else []
            return [_Sequence(i, list(ids[i]), specs[i]) for i in range(len(inputs)) for _ in range(num_generations)]

        def _chunk_seed(self, salt: str, index: int, chunk: Sequence[_Sequence]) -> int:
            h = hashlib.sha256(f"{self.seed}|{salt}|{index}".encode())
            for s in chunk:
                h.update(b"|" + ",".join(map(str, s.prompt_ids)).encode())
            return int.from_bytes(h.digest()[:8], "little") & (2**63 - 1)

        def _buckets(self, sequences: List[_Sequence]) -> List[List[_Sequence]]:
            order = sorted(range(len(sequences)), key=lambda k: (len(sequences[k].prompt_ids), k))
            size = self.effective_batch_size
            return [[sequences[k] for k in order[i:i + size]] for i in range(0, len(order), size)]

        def _generate_transformers(self, sequences: List[_Sequence], salt: str, settings: Dict[str, Any]) -> None:
            import torch

            loaded = self._loaded
            model, tok = loaded.model, loaded.tokenizer
            eos_ids = loaded.eos_ids
            pad_id = tok.pad_token_id if tok.pad_token_id is not None else eos_ids[0]
            eos_set = set(eos_ids)
            gen: Dict[str, Any] = dict(max_new_tokens=settings["max_new_tokens"], pad_token_id=pad_id,
                                       eos_token_id=eos_ids, repetition_penalty=settings["repetition_penalty"])
            if settings["do_sample"]:
                gen.update(do_sample=True, temperature=settings["temperature"], top_p=settings["top_p"],
                           top_k=settings["top_k"])
            else:
                gen.update(do_sample=False, temperature=None, top_p=None, top_k=None)
            if settings["ignore_eos"]:
                gen["min_new_tokens"] = settings["max_new_tokens"]
            stops = [x for x in settings["stop"] if x]
            device = model.device
            rng_devices = [device.index or 0] if device.type == "cuda" else []
            for index, chunk in enumerate(self._buckets(sequences)):
                width = max(len(s.prompt_ids) for s in chunk)
                input_ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
                attention = torch.zeros((len(chunk), width), dtype=torch.long)
                for row, s in enumerate(chunk):
                    n = len(s.prompt_ids)
                    if n:
                        input_ids[row, width - n:] = torch.tensor(s.prompt_ids, dtype=torch.long)
                        attention[row, width - n:] = 1
                extra: Dict[str, Any] = {}
                if stops:
                    extra["stopping_criteria"] = [_StopStrings(tok, stops, prompt_length=width)]
                if any(s.spec is not None for s in chunk):
                    grammars = [loaded.grammar.compile(s.spec) if s.spec is not None else None for s in chunk]
                    extra["logits_processor"] = [GrammarLogitsProcessor(
                        loaded.grammar, grammars, prompt_length=width, max_new_tokens=settings["max_new_tokens"],
                        formats=[s.spec["format"] if s.spec is not None else None for s in chunk])]
                with loaded.lock, torch.random.fork_rng(devices=rng_devices), torch.inference_mode():
                    torch.manual_seed(self._chunk_seed(salt, index, chunk))
                    out = model.generate(input_ids=input_ids.to(device), attention_mask=attention.to(device),
                                         **gen, **extra)
                new_tokens = out[:, width:].tolist()
                for s, tokens in zip(chunk, new_tokens):
                    n = next((k + 1 for k, t in enumerate(tokens) if t in eos_set), len(tokens))
                    kept = tokens[:n]
                    while kept and kept[-1] == pad_id and pad_id not in eos_set:  # padding after a stop string
                        kept.pop()
                    s.output_tokens = len(kept)
                    s.text = self._cut_at_stop(tok.decode(kept, skip_special_tokens=True), settings)

        @staticmethod
        def _cut_at_stop(text: str, settings: Dict[str, Any]) -> str:
            hits = [(text.find(s), s) for s in settings["stop"] if s and s in text]
            if not hits:
                return text
            at, stop = min(hits)
            return text[:at + len(stop)] if settings["include_stop_str_in_output"] else text[:at]

        def _generate_vllm(self, sequences: List[_Sequence], salt: str, settings: Dict[str, Any]) -> None:
            """vLLM: one request per sequence, each with its own seed and (if any) vLLM's structured outputs."""
            import vllm

            engine = self._loaded.model
            params = []
            for index, s in enumerate(sequences):
                kwargs: Dict[str, Any] = dict(
                    n=1, max_tokens=settings["max_new_tokens"], repetition_penalty=settings["repetition_penalty"],
                    stop=settings["stop"] or None, ignore_eos=settings["ignore_eos"],
                    include_stop_str_in_output=settings["include_stop_str_in_output"],
                    seed=self._chunk_seed(salt, index, [s]) % (2**31),
                    temperature=settings["temperature"] if settings["do_sample"] else 0.0,
                    top_p=settings["top_p"] if settings["do_sample"] else 1.0)
                if settings["do_sample"] and settings["top_k"] > 0:
                    kwargs["top_k"] = settings["top_k"]
                if s.spec is not None:
                    kwargs.update(_vllm_structured_kwargs(s.spec))
                params.append(vllm.SamplingParams(**kwargs))
            prompts = [{"prompt_token_ids": s.prompt_ids} for s in sequences]
            with self._loaded.lock:
                results = engine.generate(prompts, sampling_params=params, use_tqdm=False)
            for s, result in zip(sequences, results):
                s.text = result.outputs[0].text
                s.output_tokens = len(result.outputs[0].token_ids)


def _vllm_structured_kwargs(spec: Dict[str, Any]) -> Dict[str, Any]:
    """``SamplingParams`` keyword for vLLM's structured outputs (new ``structured_outputs`` or older
    ``guided_decoding``)."""
    key = "json" if spec["format"] == "json" else "regex"
    try:
        from vllm.sampling_params import StructuredOutputsParams

        return {"structured_outputs": StructuredOutputsParams(**{key: spec["schema"]})}
    except ImportError:
        from vllm.sampling_params import GuidedDecodingParams

        return {"guided_decoding": GuidedDecodingParams(**{key: spec["schema"]})}


# -------------------------------------------------------------------------------------- UltraFeedback helpers
def ultrafeedback_regex(n_generations: int, *, aspect: str = "overall-rating", max_rationale_chars: int = 300) -> str:
    """A regex for the text UltraFeedback's parser expects, with exactly ``n_generations`` rated sections.

    Use it as ``LocalLLM(structured_output={"format": "regex", "schema": ultrafeedback_regex(2)})`` with the default
    ``UltraFeedback`` task: every judgment then parses into one rating (1-5) per candidate.

    >>> import re
    >>> bool(re.fullmatch(ultrafeedback_regex(1), "#### Output for Text 1\\nRating: 4\\nRationale: Clear."))
    True
    """
    if n_generations < 1:
        raise ValueError(f"n_generations={n_generations} must be >= 1 (one section per candidate).")
    rationale = f"[^\\n#]{{1,{max_rationale_chars}}}"
    sections = []
    for i in range(1, n_generations + 1):
        head = f"#### Output for Text {i}\\n"
        if aspect in ("helpfulness", "truthfulness"):
            body = f"Type: (None|[1-3](, [1-3]){{0,2}})\\nRationale: {rationale}\\nRating: [1-5]\\nRationale: {rationale}"
        elif aspect in ("honesty", "instruction-following", "overall-rating"):
            body = f"Rating: [1-5]\\nRationale: {rationale}"
        else:
            raise ValueError(f"aspect={aspect!r} is not an UltraFeedback aspect.")
        sections.append(head + body)
    return "\\n\\n".join(sections)


def ultrafeedback_schema(n_generations: int, *, max_rationale_chars: int = 300) -> Dict[str, Any]:
    """JSON schema of UltraFeedback's structured judgment with exactly ``n_generations`` ratings (1-5) and
    rationales; use with ``UltraFeedback(use_default_structured_output=True)`` and
    ``LocalLLM(structured_output={"format": "json", "schema": ultrafeedback_schema(n)})``."""
    if n_generations < 1:
        raise ValueError(f"n_generations={n_generations} must be >= 1.")
    return {
        "type": "object",
        "properties": {
            "ratings": {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 5},
                        "minItems": n_generations, "maxItems": n_generations},
            "rationales": {"type": "array", "items": {"type": "string", "maxLength": max_rationale_chars},
                           "minItems": n_generations, "maxItems": n_generations},
        },
        "required": ["ratings", "rationales"],
    }


__all__ = [
    "LoadedModel", "LocalLLM", "GrammarLogitsProcessor", "clear_model_cache", "default_batch_size",
    "get_loaded_model", "magpie_prompt", "normalize_structured_output", "render_chat", "ultrafeedback_regex",
    "ultrafeedback_schema",
]
