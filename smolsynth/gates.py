"""Gates for what real models do: rows that parse and are still garbage never become training data.

Measured on SmolLM2-135M (real weights), code that passed every tiny-model test kept answers cut off at the token
budget (then closed with an end-of-turn token by the chat template, so SFT taught the model to stop mid-sentence),
judge rationales that were the template's own placeholders (``[Rationale]``), and rewrites that echoed the rewriting
prompt (``#Rewritten Response#``). Each is a counted drop reason, checked by the runner on every output row, on by
default (ARCHITECTURE.md, "Gates"):

``truncated``      the engine reports that a generation ran out of ``max_new_tokens`` (its ``finish_reasons`` in
                   distilabel's row metadata say ``"length"``); ``run(..., allow_truncated=True)`` keeps such rows.
``template_echo``  an output text copies its prompt's scaffolding (:data:`TEMPLATE_MARKERS`).

    >>> echoes_template("#Rewritten Response#: Paris is the capital."), echoes_template("Paris is the capital.")
    (True, False)
"""

from __future__ import annotations

import re
from typing import Any, Dict, Iterable, Optional

__all__ = ["TEMPLATE_MARKERS", "echoes_template", "truncated"]

TEMPLATE_MARKERS = (
    r"#\s*(?:the\s+)?(?:given|rewritten|created)\s+(?:prompt|response)\s*#",  # EvolInstruct / EvolQuality headers
    r"(?im)^\s*(?:#\s*)?rewritten\s+(?:response|prompt)\s*:",
    r"#\s*to increase the quality",  # EvolQuality's instruction, copied
    r"\[\s*rationale[^\]]*\]",  # UltraFeedback's placeholders: [Rationale], [Rationale for the rating ...]
    r"\[\s*rating[^\]]*\]",  # [Rating for text 1]
    r"(?i)^\s*rationale for the rating in short sentences",
)
"""Regular expressions (case-insensitive) of prompt scaffolding that generated text must not contain."""

_MARKERS = [re.compile(p if p.startswith("(?") else "(?i)" + p) for p in TEMPLATE_MARKERS]


def echoes_template(text: Any) -> bool:
    """True when ``text`` (a string, or a list of strings such as rationales) copies prompt scaffolding.

    >>> echoes_template(["A clear answer.", "[Rationale for the rating in short sentences]"])
    True
    """
    if isinstance(text, (list, tuple)):
        return any(echoes_template(t) for t in text)
    return isinstance(text, str) and any(m.search(text) for m in _MARKERS)


def _finish_reasons(statistics: Any) -> Iterable[str]:
    reasons = statistics.get("finish_reasons") if isinstance(statistics, dict) else None
    if isinstance(reasons, str):
        return [reasons]
    return [r for r in reasons if isinstance(r, str)] if isinstance(reasons, (list, tuple)) else []


def truncated(metadata: Optional[Dict[str, Any]], *, reasons: Iterable[str] = ("length",)) -> bool:
    """True when distilabel's row metadata (``distilabel_metadata``) says a generation of the row ran out of tokens
    (a finish reason in ``reasons``; add ``"closed"`` to count a grammar closed early because the budget ran out,
    see :mod:`smolsynth.llm`).

    >>> truncated({"statistics_text_generation_0": {"output_tokens": 8, "finish_reasons": "length"}})
    True
    >>> truncated({"statistics_magpie_0": {"finish_reasons": ["stop", "stop"]}}), truncated(None)
    (False, False)
    >>> truncated({"statistics_x": {"finish_reasons": ["closed"]}}, reasons=("length", "closed"))
    True
    """
    if not isinstance(metadata, dict):
        return False
    reasons = set(reasons)
    return any(reason in reasons for key, stats in metadata.items() if key.startswith("statistics_")
               for reason in _finish_reasons(stats))
