"""A distilabel LLM that runs a local model fast: real batching, seeds, stop strings, Magpie, constrained decoding.

distilabel's ``TransformersLLM`` calls ``generate()`` once per prompt, has no stop strings and renders Magpie prompts
with a dangling assistant header when there is a system prompt (ARCHITECTURE.md, "Decisions"). :class:`LocalLLM` is a drop-in
replacement: any distilabel ``Task`` accepts it, inside the in-process runner (:mod:`smolsynth.runner`) or a
distilabel ``Pipeline``::

    >>> from smolsynth.llm import LocalLLM
    >>> llm = LocalLLM("smolsynth/tiny", generation_kwargs={"max_new_tokens": 8})  # what tasks pass to generate()
    >>> llm.load()
    >>> out = llm.generate([[{"role": "user", "content": "Hi"}]], num_generations=2, max_new_tokens=8)
    >>> len(out[0]["generations"]), sorted(out[0]["statistics"])
    (2, ['finish_reasons', 'input_tokens', 'output_tokens'])

What it does, and where the pieces live:

* **Batching** (here). Prompts are tokenized once, sorted by length and cut into buckets of ``batch_size`` sequences
  (``num_generations`` copies of a prompt count as sequences); each bucket is one :func:`smolsynth.decoding.decode`
  call (the token loop: shared prompt prefix, preallocated KV cache, finished rows leaving the batch). The default
  batch size comes from the hardware profile (64 for the tiny model).
* **One loaded model per process** (:mod:`smolsynth.models`). Loaded ``(model, tokenizer)`` pairs are kept in a
  process-wide cache keyed by model id, dtype, device and, for a local folder, a fingerprint of its weights, so every
  task, cell and call reuses them, and a retrained folder is loaded again (:func:`clear_model_cache` frees them).
  The shared tokenizer is never changed.
* **Seeds** (here). Sampling in a bucket is seeded from ``seed``, the salt (the runner sets one per batch with
  :meth:`LocalLLM.seeded`; otherwise a constant) and the content of the bucket, so the same inputs give the same
  outputs, in any process, in any order of calls.
* **Finish reasons** (here). ``statistics["finish_reasons"]`` says, per generation, ``"stop"`` (it ended by itself:
  EOS, a stop string, or a completed grammar), ``"length"`` (it ran out of ``max_new_tokens``) or ``"closed"`` (a
  grammar's structure was closed because the budget was running out: it parses, but a string in it may be cut short;
  the judge accepts that, :mod:`smolsynth.classification` drops such a row as ``truncated``).
* **Magpie** (:mod:`smolsynth.templates`). The pre-query prompt is derived from the tokenizer's own chat template
  (:func:`~smolsynth.templates.magpie_prompt`); an explicit ``magpie_pre_query_template`` is honoured too.
* **Constrained decoding** (:mod:`smolsynth.grammar`). ``structured_output={"format": "json", "schema": {...}}`` or
  ``{"format": "regex", "schema": "..."}`` (distilabel's shape; also per input, as distilabel's tasks pass it)
  restricts every token through xgrammar; near the token budget the structure is closed so that the output parses.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Optional, Sequence

from pydantic import PositiveInt, PrivateAttr, field_validator, model_validator

from smolsynth.decoding import Sampling, decode
from smolsynth.grammar import GrammarConstraint, normalize_structured_output
from smolsynth.models import LoadedModel, get_loaded_model
from smolsynth.verbosity import import_distilabel

# moved; re-exported for the notebooks until they import from the new home (with normalize_structured_output,
# LoadedModel and get_loaded_model above, which this module uses itself)
from smolsynth.models import clear_model_cache  # noqa: E402,F401
from smolsynth.templates import MAGPIE_PRESETS, magpie_prompt, render_chat  # noqa: E402,F401
from smolsynth.ultrafeedback import ultrafeedback_regex, ultrafeedback_schema  # noqa: E402,F401

_llm_base = import_distilabel("distilabel.models.llms.base")
_magpie = import_distilabel("distilabel.models.mixins.magpie")
_runtime = import_distilabel("distilabel.mixins.runtime_parameters")

TINY_BATCH_SIZE = 64
DTYPES = ("float32", "float16", "bfloat16")
_DIRECT_SALT = "direct"  # the salt of calls made outside the runner (no seeded() block)
_NO_ENGINE = ("LocalLLM has no engine= any more: it always runs transformers. On CUDA, for vLLM's engine, use "
              "distilabel's own vLLM LLM instead (from distilabel.models.llms import vLLM), which has structured "
              "output too.")


def default_batch_size(model_id: str, profile: Any = None) -> int:
    """Sequences per batch when none is given: the hardware profile's, 64 for the tiny model."""
    from smolsynth.models import is_tiny

    if is_tiny(model_id):
        return TINY_BATCH_SIZE
    if profile is None:
        from smolsynth.hardware import current_profile

        profile = current_profile()
    return int(profile.generation_batch_size)


class _StopStrings:
    """``stop(row, tokens)`` for :func:`smolsynth.decoding.decode`: has the row's *generated* text reached a stop
    string? (transformers' own ``stop_strings`` also match across the prompt boundary: a prompt ending in a newline
    plus a generated newline "contains" ``"\\n\\n"``, which ends generations after one token.)"""

    def __init__(self, tokenizer: Any, stops: List[str]) -> None:
        self.tokenizer = tokenizer
        self.stops = stops
        self.window = 2 * max(len(s) for s in stops) + 4

    def __call__(self, row: int, tokens: List[int]) -> bool:
        text = self.tokenizer.decode(tokens[-self.window:], skip_special_tokens=True)
        return any(s in text for s in self.stops)


@dataclass
class _Sequence:
    input_index: int
    prompt_ids: List[int]
    spec: Optional[Dict[str, Any]]
    copy: int = 0  # how many equal (prompt, spec) sequences come before this one in the call
    text: str = ""
    output_tokens: int = 0
    finish_reason: str = "length"


# distilabel's RuntimeParameter carries Field(default=None) inside Annotated: pydantic warns about it once, when the
# class is created. The warning is about distilabel's typing, not about anything a learner can act on, so it is
# silenced for the class statement only (catch_warnings entered and left by hand, to keep the class at top level).
_quiet_class_creation = warnings.catch_warnings()
_quiet_class_creation.__enter__()
warnings.filterwarnings("ignore", message=r"The 'default' attribute with value None was provided to the `Field\(\)`")


class MagpieFromChatTemplate(_magpie.MagpieChatTemplateMixin):
    """distilabel's Magpie mixin, except that no template has to be given: ``None`` (or ``"auto"``) derives it from
    the chat template (:func:`~smolsynth.templates.magpie_prompt`); presets ``"llama3"``, ``"qwen2"``, ``"chatml"``
    become their text. :class:`LocalLLM` and :class:`smolsynth.servers.ServerLLM` use it."""

    @field_validator("magpie_pre_query_template")
    @classmethod
    def magpie_pre_query_template_validator(cls, value: Optional[str]) -> Optional[str]:
        """Presets ``"llama3"``, ``"qwen2"``, ``"chatml"`` become their text; ``None``/``"auto"``: derive it."""
        if value in (None, "auto"):
            return None
        return MAGPIE_PRESETS.get(value, value)

    @model_validator(mode="after")
    def use_magpie_template_validation(self):
        """Unlike distilabel's mixin, Magpie needs no explicit template here: it is derived from the chat template."""
        return self


class LocalLLM(_llm_base.LLM, MagpieFromChatTemplate):
    """A distilabel ``LLM`` backed by a local transformers model, batched for real.

    For vLLM's engine on a CUDA machine, use distilabel's own ``vLLM`` LLM (``distilabel.models.llms.vLLM``, with
    structured output) in place of this class: every task here accepts either.

    Args:
        model: hub id, local folder or ``"smolsynth/tiny"``; ``None`` resolves through
            :func:`smolsynth.models.resolve_model` (``$SMOLSYNTH_MODEL``, then the hardware profile's default).
        dtype: ``"float32"``, ``"float16"`` or ``"bfloat16"`` (never ``torch_dtype``); default from the profile.
        device: ``"cpu"``, ``"cuda"``, ``"mps"``; default from the profile.
        batch_size: sequences per batch (one :func:`~smolsynth.decoding.decode` call); default from the profile (64 for the tiny model).
        seed: base seed of all sampling.
        structured_output: ``{"format": "json", "schema": {...}}`` or ``{"format": "regex", "schema": "..."}``.
        magpie_pre_query_template: None (derive from the chat template), ``"llama3"``, ``"qwen2"``, ``"chatml"``
            or the template text.
        chat_template: a Jinja chat template to use instead of the tokenizer's.
        generation_kwargs: defaults for :meth:`generate` (``max_new_tokens``, ``temperature``, ``stop``, ...).

    >>> from distilabel.steps.tasks import TextGeneration  # doctest: +SKIP
    >>> task = TextGeneration(llm=LocalLLM("smolsynth/tiny", generation_kwargs={"max_new_tokens": 16}))  # doctest: +SKIP
    """

    model: Optional[str] = None
    dtype: Optional[str] = None
    device: Optional[str] = None
    batch_size: Optional[PositiveInt] = None
    seed: int = 0
    chat_template: Optional[str] = None
    structured_output: Optional[_runtime.RuntimeParameter[Dict[str, Any]]] = None

    _loaded: Optional[LoadedModel] = PrivateAttr(default=None)
    _usage: Dict[str, int] = PrivateAttr(default_factory=lambda: {"input_tokens": 0, "output_tokens": 0,
                                                                   "sequences": 0})
    _salt: Optional[str] = PrivateAttr(default=None)

    def __init__(self, model: Optional[str] = None, /, **data: Any) -> None:
        if "torch_dtype" in data:
            raise TypeError("LocalLLM takes dtype=..., not torch_dtype= (deprecated in transformers 5): "
                            f"use LocalLLM(dtype={data['torch_dtype']!r}).")
        if "engine" in data:
            raise TypeError(_NO_ENGINE)
        if model is not None:
            if data.get("model") is not None:
                raise TypeError("LocalLLM got the model twice: pass it positionally or as model=..., not both.")
            data["model"] = model
        super().__init__(**data)

    # ---------------------------------------------------------------------------------------------- validation
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

    # ------------------------------------------------------------------------------------------------- loading
    @property
    def model_name(self) -> str:
        return str(self.model)

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
        """Sequences per batch: ``batch_size`` or the default for this model and machine."""
        return int(self.batch_size or default_batch_size(self.model_name))

    def load(self) -> None:
        """Load (or reuse) the model and tokenizer; cheap after the first time in a process. A local folder whose
        weights changed since it was loaded is loaded again."""
        self._loaded = get_loaded_model(self.model_name, dtype=self.resolved_dtype, device=self.resolved_device)
        super().load()

    def unload(self) -> None:
        """Keep the model in the process-wide cache (notebooks reuse it); see :func:`clear_model_cache`."""
        self._loaded = None

    @property
    def tokenizer(self) -> Any:
        """The loaded (shared) tokenizer: read it, do not change it."""
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

    # ------------------------------------------------------------------------------------------------- prompts
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

    # ---------------------------------------------------------------------------------------------- generation
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
        presence_penalty: float = 0.0,
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
            repetition_penalty: 1.0 is off (transformers' multiplicative penalty on every token seen, prompt included).
            presence_penalty: 0.0 is off; OpenAI's additive penalty on the tokens already generated (Self-Instruct
                used 2).
            stop: strings that end a text (cut from the output unless ``include_stop_str_in_output``).
            ignore_eos: keep generating to ``max_new_tokens`` (benchmarks).

        Returns:
            One ``{"generations": [...], "statistics": {"input_tokens": [...], "output_tokens": [...],
            "finish_reasons": [...]}}`` per input; a finish reason is ``"stop"`` (EOS, a stop string, or a
            completed grammar), ``"length"`` (``max_new_tokens`` ran out) or ``"closed"`` (the grammar was closed
            early because the budget was running out).
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
        salt = self._salt if self._salt is not None else _DIRECT_SALT
        settings = dict(max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, top_k=top_k,
                        do_sample=do_sample and temperature > 0, repetition_penalty=repetition_penalty,
                        presence_penalty=presence_penalty,
                        stop=list(stop or []), ignore_eos=ignore_eos,
                        include_stop_str_in_output=include_stop_str_in_output)
        if sequences:
            self._generate_transformers(sequences, salt, settings)
        outputs: List[Dict[str, Any]] = []
        for i in range(len(inputs)):
            mine = sequences[i * num_generations:(i + 1) * num_generations]
            n_in = len(mine[0].prompt_ids) if mine else 0
            outputs.append({"generations": [s.text for s in mine],
                            "statistics": {"input_tokens": [n_in] * num_generations,
                                           "output_tokens": [s.output_tokens for s in mine],
                                           "finish_reasons": [s.finish_reason for s in mine]}})
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
        seen: Dict[str, int] = {}
        sequences = []
        for i in range(len(inputs)):
            key = json.dumps([list(ids[i]), specs[i]], sort_keys=True)
            for _ in range(num_generations):
                sequences.append(_Sequence(i, list(ids[i]), specs[i], copy=seen.get(key, 0)))
                seen[key] = seen.get(key, 0) + 1
        return sequences

    def _chunk_seed(self, salt: str, chunk: Sequence[_Sequence]) -> int:
        """The seed of one bucket: ``seed``, the salt and the bucket's content (its prompts, their structured
        outputs, and which copy of an equal sequence each is), nothing else: no call counter, no position."""
        h = hashlib.sha256(f"{self.seed}|{salt}".encode())
        for s in chunk:
            h.update(json.dumps([s.prompt_ids, s.spec, s.copy], sort_keys=True).encode())
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
        sampling = Sampling(temperature=settings["temperature"] if settings["do_sample"] else 0.0,
                            top_p=settings["top_p"], top_k=settings["top_k"],
                            repetition_penalty=settings["repetition_penalty"],
                            presence_penalty=settings["presence_penalty"])
        if settings["ignore_eos"]:
            min_new_tokens = settings["max_new_tokens"]
        else:  # the tiny model's floor (its generation config), within a smaller budget
            min_new_tokens = min(getattr(model.generation_config, "min_new_tokens", None) or 0,
                                 settings["max_new_tokens"])
        stops = [x for x in settings["stop"] if x]
        stopper = _StopStrings(tok, stops) if stops else None
        for chunk in self._buckets(sequences):
            grammar = None
            if any(s.spec is not None for s in chunk):
                grammar = GrammarConstraint(
                    loaded.grammar, [loaded.grammar.compile(s.spec) if s.spec is not None else None for s in chunk],
                    max_new_tokens=settings["max_new_tokens"],
                    formats=[s.spec["format"] if s.spec is not None else None for s in chunk])
            generator = torch.Generator(device="cpu").manual_seed(self._chunk_seed(salt, chunk))
            with loaded.lock:
                decoded = decode(model, [s.prompt_ids or [pad_id] for s in chunk],
                                 max_new_tokens=settings["max_new_tokens"], eos_ids=eos_ids, pad_id=pad_id,
                                 sampling=sampling, generator=generator,
                                 # a grammar decides when output ends (a model's config may not)
                                 min_new_tokens=0 if grammar is not None and not settings["ignore_eos"]
                                 else min_new_tokens,
                                 constraint=grammar, stop=stopper)
            for row, (s, d) in enumerate(zip(chunk, decoded)):
                s.output_tokens = len(d.tokens)
                s.text, cut = self._cut_at_stop(tok.decode(d.tokens, skip_special_tokens=True), settings)
                # a grammar ends with its stop token (EOS), so a completed grammar counts as an EOS here
                s.finish_reason = "stop" if d.reason != "length" or cut else "length"
                if grammar is not None and grammar.closed[row]:
                    s.finish_reason = "closed"  # it parses, but a string in it may have been cut short

    @staticmethod
    def _cut_at_stop(text: str, settings: Dict[str, Any]) -> "tuple[str, bool]":
        hits = [(text.find(s), s) for s in settings["stop"] if s and s in text]
        if not hits:
            return text, False
        at, stop = min(hits)
        return (text[:at + len(stop)] if settings["include_stop_str_in_output"] else text[:at]), True


_quiet_class_creation.__exit__(None, None, None)
del _quiet_class_creation

__all__ = [
    "LoadedModel", "LocalLLM", "GrammarConstraint", "MAGPIE_PRESETS", "clear_model_cache", "default_batch_size",
    "get_loaded_model", "magpie_prompt", "normalize_structured_output", "render_chat", "ultrafeedback_regex",
    "ultrafeedback_schema",
]
