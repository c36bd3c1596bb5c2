"""Constrained decoding: distilabel's ``structured_output`` (a JSON schema or a regex) enforced token by token.

:func:`normalize_structured_output` puts distilabel's ``structured_output`` dict in one canonical form.
:class:`GrammarConstraint` keeps each row of a batch inside its own grammar through xgrammar, for
:func:`smolsynth.decoding.decode` (one matcher per row; rows may have different grammars, or none). When a row is about to run
out of ``max_new_tokens``, the remaining tokens are spent on the shortest way to close the structure
(:func:`_closing_path`), so the output still parses (a string may then be cut short), and the row ends with its stop
token; ``closed`` records which rows were (their finish reason is then ``"closed"``, see :mod:`smolsynth.llm`).
Works on CPU, with the tiny random model too.
"""

from __future__ import annotations

import json
import threading
from typing import Any, Dict, List, Optional, Sequence, Tuple

CLOSE_MARGIN = 8
"""Tokens to spare when the closing path is taken: one token can lengthen the path by several (a JSON ``\\u``
escape needs four hex digits, then the quote and the brackets), so a row closes while that still fits. At most a
quarter of the budget, so that a short budget is not closed from the first token."""

# Characters tried, in this order, to close a structure when the token budget runs out (see _closing_path).
_CLOSING_ORDER = "\n\"]}10,: [{-.tfnae" + "".join(chr(c) for c in range(32, 127))


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


def length_pattern(chars: str, low: int, high: int) -> Tuple[str, int]:
    """A regex for ``low`` to ``high`` characters of the class ``chars``, and its actual minimum (``low`` raised by at
    most 19 so that the maximum is exactly ``high``). xgrammar 0.2.8 ignores minLength/maxLength beside a pattern,
    fails to compile a repetition like ``{10,200}``, and decodes an ambiguous one (``(?:c{0,20}){0,9}``) 4x slower;
    ``c{low}(?:c{20}){0,k}c{0,19}`` has one reading for every length.

    >>> length_pattern("[a-z]", 1, 40)
    ('^[a-z]{1}(?:[a-z]{20}){0,1}[a-z]{0,19}$', 1)
    """
    low += (high - low - 19) % 20
    return f"^{chars}{{{low}}}(?:{chars}{{20}}){{0,{(high - low - 19) // 20}}}{chars}{{0,19}}$", low


class GrammarTools:
    """xgrammar objects for one loaded model: the compiler (with its cache) and byte -> single-byte-token ids.

    ``loaded`` is a :class:`smolsynth.models.LoadedModel` (anything with ``model``, ``tokenizer`` and ``eos_ids``).
    The tokenizer is only read, never changed.
    """

    def __init__(self, loaded: Any) -> None:
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
                    self._compiled[key] = self.compiler.compile_json_schema(
                        json.dumps(_without_lengths_beside_patterns(spec["schema"])), any_whitespace=False)
                else:
                    self._compiled[key] = self.compiler.compile_regex(spec["schema"])
            return self._compiled[key]


def _without_lengths_beside_patterns(schema: Any) -> Any:
    """``schema`` without the ``minLength``/``maxLength`` of strings that have a ``pattern``: xgrammar 0.2.8 ignores
    them there and prints a warning per compile, so the pattern must hold the length itself (e.g.
    :func:`smolsynth.classification.text_schema`); the schema keeps them for its readers.

    >>> _without_lengths_beside_patterns({"properties": {"t": {"pattern": "^a{2}$", "maxLength": 2}}})
    {'properties': {'t': {'pattern': '^a{2}$'}}}
    """
    if isinstance(schema, dict):
        drop = {"minLength", "maxLength"} if "pattern" in schema else set()
        return {k: _without_lengths_beside_patterns(v) for k, v in schema.items() if k not in drop}
    if isinstance(schema, list):
        return [_without_lengths_beside_patterns(v) for v in schema]
    return schema


def _allowed(bitmask_row: List[int], token_id: int) -> bool:
    return bool(bitmask_row[token_id >> 5] & (1 << (token_id & 31)))


def _closing_path(tools: GrammarTools, matcher: Any, limit: int, json_mode: bool = False) -> Optional[List[int]]:
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


class GrammarConstraint:
    """Keeps each row of a bucket inside its grammar (None = unconstrained): a
    :class:`smolsynth.decoding.Constraint` for :func:`smolsynth.decoding.decode`.

    One xgrammar matcher per row; rows may have different grammars. Near the end of the token budget a row whose
    structure is still open is steered along the shortest closing path, so that it parses.
    """

    def __init__(self, tools: GrammarTools, grammars: Sequence[Any], *, max_new_tokens: int,
                 formats: Optional[Sequence[Optional[str]]] = None) -> None:
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
        self.closed = [False] * len(grammars)  # rows whose structure was closed because the budget ran out
        self.next_check = [max_new_tokens] * len(grammars)
        self.max_new_tokens = max_new_tokens
        self.margin = max(2, min(CLOSE_MARGIN, max_new_tokens // 4))
        from smolsynth.decoding import current_speedups

        # The masks are filled between two model steps, when torch's threads are idle: use as many.
        self.batch = (xgr.BatchGrammarMatcher(max_threads=max(1, torch.get_num_threads()))
                      if current_speedups().parallel_grammar and len(grammars) > 1 else None)

    def mask(self, rows: Sequence[Optional[int]], step: int, scores: Any) -> Any:
        """``scores`` (batch row k is prompt ``rows[k]``; None: an ended row) restricted to what each grammar
        allows next."""
        import torch

        remaining = self.max_new_tokens - step
        force_now: Dict[int, int] = {}
        bitmask = self.tools.xgr.allocate_token_bitmask(len(rows), self.tools.vocab_size)  # all allowed
        constrained: List[int] = []
        fill: List[int] = []  # batch rows whose grammar mask is filled
        for k, i in enumerate(rows):
            if i is None or not self.active[i]:
                continue
            matcher = self.matchers[i]
            if matcher.is_terminated():
                self.active[i] = False
                continue
            if not self.forced[i] and remaining <= self.next_check[i]:
                path = _closing_path(self.tools, matcher, limit=remaining, json_mode=self.json_rows[i])
                if path is not None and len(path) + self.margin >= remaining:
                    self.forced[i] = path
                    self.closed[i] = True
                elif path is not None:
                    self.next_check[i] = (remaining + len(path) + self.margin) // 2 + 1
                else:
                    self.next_check[i] = remaining - 1
            if self.forced[i]:
                force_now[k] = self.forced[i].pop(0)  # on the closing path: no mask needed, the token is set
            else:
                fill.append(k)
            constrained.append(k)
        if not constrained:
            return scores
        if self.batch is not None and len(fill) > 1:
            self.batch.batch_fill_next_token_bitmask([self.matchers[rows[k]] for k in fill], bitmask, indices=fill)
        else:
            for k in fill:
                self.matchers[rows[k]].fill_next_token_bitmask(bitmask, k)
        device = scores.device
        if device.type == "cuda":
            self.tools.xgr.apply_token_bitmask_inplace(scores, bitmask.to(device))
        else:
            cpu = scores.to("cpu") if device.type != "cpu" else scores
            self.tools.xgr.apply_token_bitmask_inplace(cpu, bitmask)
            scores = cpu.to(device) if device.type != "cpu" else cpu
        ban = torch.zeros((len(rows), scores.shape[1]), dtype=torch.bool)
        ban[constrained] = self.ban[[rows[k] for k in constrained], :scores.shape[1]]
        scores = scores.masked_fill(ban.to(device), -float("inf"))
        for k, token in force_now.items():
            keep = scores[k, token].clone()
            scores[k] = -float("inf")
            scores[k, token] = torch.where(torch.isfinite(keep), keep, torch.zeros_like(keep))
        return scores

    def accept(self, rows: Sequence[Optional[int]], tokens: Sequence[int]) -> None:
        """Advance each live constrained row's matcher by the token it wrote."""
        for i, token in zip(rows, tokens):
            if i is None or not self.active[i]:
                continue
            matcher = self.matchers[i]
            if matcher.is_terminated() or not matcher.accept_token(token):
                self.active[i] = False


_GrammarTools = GrammarTools  # the old private name

__all__ = ["GrammarConstraint", "GrammarTools", "normalize_structured_output"]
