"""The engine's token loop: one batch of prompts in, one list of new tokens per prompt out.

:class:`smolsynth.llm.LocalLLM` sorts sequences into length buckets and hands each bucket to :func:`decode`. It is
``model.generate`` cut down to what a batch of short generations on a small model needs, plus four things generate
does not do (each measured, see benchmarks/README.md, "Where a decoding step goes"):

* **A shared prompt prefix is computed once.** Prompts written from one template (the judge's ~450-token rubric)
  start with the same tokens; their KV cache is computed for one row and copied to the others, and only the rest of
  each prompt is prefilled. Rows are laid out ``[prefix][padding][own tokens]``; the attention mask hides the padding
  and positions count real tokens only, so each row sees exactly its own prompt.
* **The KV cache is preallocated** (``_BufferLayer``): a step writes one position, where transformers' default
  cache concatenates (copies) the whole cache at every step, which on a 700-token judge prompt costs more than the
  model.
* **Finished rows leave the batch** (``compact``): when a quarter of the rows have ended, the cache keeps only the
  others, so the tail of a bucket is not paid for rows that are done.
* **Sampling touches the vocabulary once**: softmax, cumulative sum, one uniform number per row (inverse-CDF
  sampling, exact), instead of ``torch.multinomial``'s race of one exponential draw per vocabulary entry (35 ms of a
  135 ms step at batch 32 on a CPU). The uniforms come from a ``torch.Generator`` seeded by the caller, so the global
  random state is never touched and the same seed gives the same tokens.

Greedy decoding writes ``model.generate``'s tokens (a test checks it on a real model, speed-ups on: the prefix's
keys and values are the same numbers whether computed once or per row, up to floating-point summation order).

>>> from smolsynth.models import get_loaded_model
>>> loaded = get_loaded_model("smolsynth/tiny", dtype="float32", device="cpu")
>>> out = decode(loaded.model, [[1, 2, 3], [4, 5]], max_new_tokens=4, eos_ids=loaded.eos_ids, pad_id=0,
...              sampling=Sampling(temperature=0.0), min_new_tokens=4)
>>> [(len(d.tokens), d.reason) for d in out]
[(4, 'length'), (4, 'length')]
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterator, List, Optional, Sequence

MIN_SHARED_PREFIX = 16  # shorter common prefixes are prefilled with each row (sharing costs one batch-1 forward)


@dataclass(frozen=True)
class Sampling:
    """How the next token is picked: ``temperature`` 0 is greedy; else softmax at ``temperature`` after
    ``top_k`` (0: off) and ``top_p`` (1.0: off). ``repetition_penalty`` is transformers' (divides positive and
    multiplies negative logits of every token already seen, prompt included; 1.0: off); ``presence_penalty`` is
    OpenAI's (subtracted once from every token already generated; 0.0: off)."""

    temperature: float = 0.7
    top_p: float = 1.0
    top_k: int = 0
    repetition_penalty: float = 1.0
    presence_penalty: float = 0.0

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0


@dataclass(frozen=True)
class Speedups:
    """The engine's speed-ups, each of which can be switched off (benchmarks measure them one by one)."""

    share_prefix: bool = True
    preallocate: bool = True
    compact: bool = True
    fast_sampling: bool = True
    parallel_grammar: bool = True  # the grammar's next-token masks of a batch's rows filled on several threads


_speedups = Speedups()


def current_speedups() -> Speedups:
    """The speed-ups in force here (see :func:`speedups`)."""
    return _speedups


@contextlib.contextmanager
def speedups(**switches: bool) -> Iterator[Speedups]:
    """Switch speed-ups on or off inside the block, e.g. ``with speedups(share_prefix=False): ...``; with
    ``all=False`` every one of them (what benchmarks compare against). Outputs stay valid either way."""
    global _speedups
    previous = _speedups
    if "all" in switches:
        on = switches.pop("all")
        _speedups = Speedups(**{name: on for name in Speedups.__dataclass_fields__})
    unknown = set(switches) - set(Speedups.__dataclass_fields__)
    if unknown:
        raise TypeError(f"speedups() got {sorted(unknown)}; the switches are {sorted(Speedups.__dataclass_fields__)} "
                        "and all.")
    _speedups = replace(_speedups, **switches)
    try:
        yield _speedups
    finally:
        _speedups = previous


@dataclass
class Decoded:
    """One row's result: its new ``tokens`` (ending with the EOS token when it ended by itself) and ``reason``:
    ``"eos"``, ``"stop"`` (a stop check said so) or ``"length"`` (``max_new_tokens`` ran out)."""

    tokens: List[int] = field(default_factory=list)
    reason: str = "length"


class Constraint:
    """What a constraint on the tokens (a grammar) gives the loop. ``rows[k]`` is the prompt (an index into the
    bucket) that batch row ``k`` writes for, or None for a row that has ended and waits to leave the batch."""

    def mask(self, rows: Sequence[Optional[int]], step: int, scores: Any) -> Any:  # pragma: no cover - interface
        """``scores`` (one row per entry of ``rows``) with the tokens each row may not write set to -inf."""
        raise NotImplementedError

    def accept(self, rows: Sequence[Optional[int]], tokens: Sequence[int]) -> None:  # pragma: no cover - interface
        """Advance each row's state by the token it wrote."""
        raise NotImplementedError


def common_prefix(prompts: Sequence[Sequence[int]]) -> int:
    """The number of leading tokens every prompt shares, at most the shortest prompt's length minus one (each row
    keeps at least one token of its own, whose logits start its answer).

    >>> common_prefix([[1, 2, 3, 4], [1, 2, 5], [1, 2, 3]])
    2
    """
    if not prompts:
        return 0
    limit = min(len(p) for p in prompts) - 1
    first = prompts[0]
    n = 0
    while n < limit and all(p[n] == first[n] for p in prompts):
        n += 1
    return n


def decode(model: Any, prompts: Sequence[Sequence[int]], *, max_new_tokens: int, eos_ids: Sequence[int],
           pad_id: int, sampling: Sampling, generator: Any = None, min_new_tokens: int = 0,
           constraint: Optional[Constraint] = None,
           stop: Optional[Callable[[int, List[int]], bool]] = None) -> List[Decoded]:
    """Generate up to ``max_new_tokens`` tokens after each prompt (token id lists), in one batch.

    Args:
        model: a transformers causal LM (any with a KV cache and ``logits_to_keep``).
        prompts: one token id list per row, each at least one token long.
        eos_ids: tokens that end a row (kept as its last token); not allowed before ``min_new_tokens``.
        pad_id: the token written in padding positions (never attended to).
        sampling: :class:`Sampling`.
        generator: a ``torch.Generator`` for sampling (a fixed seed gives fixed outputs); None: torch's default.
        constraint: a :class:`Constraint` (a grammar), or None.
        stop: ``stop(row, tokens_so_far) -> bool``, asked after every token (stop strings); True ends the row.

    Returns:
        One :class:`Decoded` per prompt, in order.
    """
    import torch

    if not prompts or any(len(p) == 0 for p in prompts):
        raise ValueError("decode() needs at least one prompt, each with at least one token.")
    options = _speedups
    device = model.device
    n_rows = len(prompts)
    width = max(len(p) for p in prompts)
    shared = common_prefix(prompts) if options.share_prefix and n_rows > 1 else 0
    if shared < MIN_SHARED_PREFIX:
        shared = 0
    cache = _new_cache(model, capacity=width + max_new_tokens if options.preallocate else None)
    eos = torch.tensor(list(eos_ids), dtype=torch.long, device=device)
    results = [Decoded() for _ in prompts]
    rows = torch.arange(n_rows, device=device)  # which prompt each batch row is (rows leave when compacting)
    penalties = _Penalties(sampling, prompts, model, device)

    with torch.inference_mode():
        if shared:
            prefix = torch.tensor([list(prompts[0][:shared])], dtype=torch.long, device=device)
            model(input_ids=prefix, past_key_values=cache, use_cache=True, logits_to_keep=1)
            cache.batch_repeat_interleave(n_rows)
        rest = width - shared
        input_ids = torch.full((n_rows, rest), pad_id, dtype=torch.long)
        attention = torch.zeros((n_rows, width), dtype=torch.long)
        attention[:, :shared] = 1
        for r, p in enumerate(prompts):
            own = list(p[shared:])
            input_ids[r, rest - len(own):] = torch.tensor(own, dtype=torch.long)
            attention[r, width - len(own):] = 1
        input_ids, attention = input_ids.to(device), attention.to(device)
        positions = (attention.cumsum(-1) - 1).masked_fill_(attention == 0, 1)  # as generate() does
        out = model(input_ids=input_ids, attention_mask=attention, position_ids=positions[:, shared:],
                    past_key_values=cache, use_cache=True, logits_to_keep=1)
        next_position = positions[:, -1:] + 1
        live = [True] * n_rows  # per batch row: still writing (an ended row stays until the batch is compacted)
        waiting = 0  # ended rows still in the batch
        for step in range(max_new_tokens):
            scores = penalties.apply(out.logits[:, -1, :].float(), rows)
            batch_rows = [r if alive else None for r, alive in zip(rows.tolist(), live)]
            if constraint is not None:
                scores = constraint.mask(batch_rows, step, scores)
            if step < min_new_tokens:
                scores[:, eos] = -float("inf")
            tokens = _pick(scores, sampling, generator, rows, n_rows, options.fast_sampling)
            written = tokens.tolist()
            if constraint is not None:
                constraint.accept(batch_rows, written)
            penalties.record(tokens, rows)
            for k, (r, t) in enumerate(zip(batch_rows, written)):
                if r is None:
                    continue
                results[r].tokens.append(t)
                if t in eos_ids:
                    results[r].reason = "eos"
                elif stop is not None and stop(r, results[r].tokens):
                    results[r].reason = "stop"
                else:
                    continue
                live[k] = False
                waiting += 1
            if step == max_new_tokens - 1 or not any(live):
                break
            if options.compact and waiting * 4 >= len(live) and max_new_tokens - step > 8:
                index = torch.tensor([k for k, alive in enumerate(live) if alive], device=device)
                cache.batch_select_indices(index)
                rows, tokens, attention = rows[index], tokens[index], attention[index]
                next_position = next_position[index]
                live, waiting = [True] * len(index), 0
            alive = torch.tensor(live, device=device)
            tokens = tokens.masked_fill(~alive, pad_id)  # an ended row is fed padding, as generate() does
            attention = torch.cat([attention, attention.new_ones((len(live), 1))], dim=1)
            out = model(input_ids=tokens[:, None], attention_mask=attention, position_ids=next_position,
                        past_key_values=cache, use_cache=True, logits_to_keep=1)
            next_position = next_position + 1
    return results


def _new_cache(model: Any, capacity: Optional[int]) -> Any:
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    cache = DynamicCache(config=model.config)
    if capacity is not None and all(type(layer) is DynamicLayer for layer in cache.layers):
        cache.layers = [_buffer_layer_class()(capacity) for _ in cache.layers]
    return cache


@functools.lru_cache(maxsize=None)
def _buffer_layer_class() -> type:
    """:class:`_BufferLayer`, made on first use (transformers is imported only when a model runs)."""
    from transformers.cache_utils import DynamicLayer

    class _BufferLayer(DynamicLayer):
        """A KV-cache layer that writes into a buffer of ``capacity`` positions instead of concatenating at every
        step; ``keys``/``values`` are views of the filled part."""

        def __init__(self, capacity: int) -> None:
            super().__init__()
            self.capacity = capacity
            self.length = 0
            self._keys: Any = None
            self._values: Any = None

        def update(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> Any:
            import torch

            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            end = self.length + key_states.shape[-2]
            if self._keys is None or end > self._keys.shape[-2]:
                shape = (key_states.shape[0], key_states.shape[1], max(end, self.capacity), key_states.shape[-1])
                keys = key_states.new_empty(shape)
                values = value_states.new_empty((*shape[:3], value_states.shape[-1]))
                if self.length:
                    keys[..., :self.length, :] = self._keys[..., :self.length, :]
                    values[..., :self.length, :] = self._values[..., :self.length, :]
                self._keys, self._values = keys, values
            self._keys[..., self.length:end, :] = key_states
            self._values[..., self.length:end, :] = value_states
            self.length = end
            self._views()
            return self.keys, self.values

        def _views(self) -> None:
            self.keys, self.values = self._keys[..., :self.length, :], self._values[..., :self.length, :]

        def get_seq_length(self) -> int:
            return self.length

        def batch_repeat_interleave(self, repeats: int) -> None:
            if self.length:
                self._keys = self._keys.repeat_interleave(repeats, dim=0)
                self._values = self._values.repeat_interleave(repeats, dim=0)
                self._views()

        def batch_select_indices(self, indices: Any) -> None:
            if self.length:
                self._keys = self._keys.index_select(0, indices)
                self._values = self._values.index_select(0, indices)
                self._views()

        def reset(self) -> None:
            self._keys = self._values = None
            self.length = 0
            super().reset()

    return _BufferLayer


class _Penalties:
    """Repetition and presence penalties over the tokens each row has seen (kept as one boolean mask per row)."""

    def __init__(self, sampling: Sampling, prompts: Sequence[Sequence[int]], model: Any, device: Any) -> None:
        import torch

        self.sampling = sampling
        self.seen = self.generated = None
        if sampling.repetition_penalty == 1.0 and not sampling.presence_penalty:
            return
        vocab = model.get_output_embeddings().weight.shape[0]
        if sampling.repetition_penalty != 1.0:
            self.seen = torch.zeros((len(prompts), vocab), dtype=torch.bool, device=device)
            for r, p in enumerate(prompts):
                self.seen[r, torch.tensor(list(p), dtype=torch.long, device=device)] = True
        if sampling.presence_penalty:
            self.generated = torch.zeros((len(prompts), vocab), dtype=torch.bool, device=device)

    def apply(self, scores: Any, rows: Any) -> Any:
        import torch

        if self.seen is not None:
            seen = self.seen[rows, :scores.shape[1]]
            p = self.sampling.repetition_penalty
            scores = torch.where(seen, torch.where(scores < 0, scores * p, scores / p), scores)
        if self.generated is not None:
            scores = scores - self.sampling.presence_penalty * self.generated[rows, :scores.shape[1]].float()
        return scores

    def record(self, tokens: Any, rows: Any) -> None:
        if self.seen is not None:
            self.seen[rows, tokens] = True
        if self.generated is not None:
            self.generated[rows, tokens] = True


def _pick(scores: Any, sampling: Sampling, generator: Any, rows: Any, n_rows: int, fast: bool) -> Any:
    """The next token of each row: argmax when greedy; else a sample after temperature, top-k and top-p."""
    import torch

    if sampling.greedy:
        return scores.argmax(dim=-1)
    scores = scores / sampling.temperature
    if sampling.top_k and sampling.top_k < scores.shape[1]:
        kth = torch.topk(scores, sampling.top_k, dim=-1).values[:, -1:]
        scores = scores.masked_fill(scores < kth, -float("inf"))
    if sampling.top_p < 1.0:  # transformers' rule: drop the least likely tokens whose mass is at most 1 - top_p
        ordered, order = torch.sort(scores, descending=False, dim=-1)
        drop = ordered.softmax(dim=-1).cumsum(dim=-1) <= (1 - sampling.top_p)
        drop[:, -1] = False  # always keep the most likely token
        scores = scores.masked_fill(drop.scatter(1, order, drop), -float("inf"))
    probs = scores.softmax(dim=-1)
    if not fast:
        return torch.multinomial(probs, 1, generator=generator).squeeze(1)
    cdf = probs.cumsum(dim=-1)
    # one uniform per prompt of the bucket at every step, whichever rows are left: a row's draws do not depend on
    # when the others finished
    u = torch.rand(n_rows, generator=generator, device=generator.device if generator is not None else "cpu")
    u = u.to(scores.device)[rows].unsqueeze(1) * cdf[:, -1:]
    picked = torch.searchsorted(cdf, u, right=True).squeeze(1).clamp_(max=scores.shape[1] - 1)
    # u * total can round up to the total itself: then take the most likely token rather than a zero-mass one
    zero = probs.gather(1, picked[:, None]).squeeze(1) == 0
    return torch.where(zero, probs.argmax(dim=-1), picked)


__all__ = ["Constraint", "Decoded", "MIN_SHARED_PREFIX", "Sampling", "Speedups", "common_prefix", "decode",
           "speedups"]
