"""Chat-template knowledge: the ChatML template, Magpie's pre-query templates, and how to render either.

* :data:`CHATML_TEMPLATE`: the ChatML Jinja template (Qwen2.5 and SmolLM2 style, no default system prompt); the tiny
  offline model carries it.
* :data:`MAGPIE_PRESETS`: distilabel's named Magpie pre-query templates (``"llama3"``, ``"qwen2"``) plus ``"chatml"``.
* :func:`render_chat`: ``tokenizer.apply_chat_template`` as text, with an optional template override.
* :func:`magpie_prompt`: the prompt that makes a chat model write the next *user* turn (ARCHITECTURE.md, "Decisions").

This module imports nothing heavy (no torch, no distilabel): :mod:`smolsynth.models` uses it at import time.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Sequence

CHATML_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
"""The ChatML template (as used by Qwen2.5 and SmolLM2, without a default system prompt)."""

# distilabel.models.mixins.magpie.MAGPIE_PRE_QUERY_TEMPLATES (copied, so that importing this module stays cheap;
# tests/test_magpie.py checks that the copy matches distilabel's), plus plain ChatML.
MAGPIE_PRESETS: Dict[str, str] = {
    "llama3": "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n",
    "qwen2": "<|im_start|>user\n",
    "chatml": "<|im_start|>user\n",
}
"""Named Magpie pre-query templates: ``"llama3"``, ``"qwen2"`` (distilabel's) and ``"chatml"``."""

_SENTINEL = "SMOLSYNTHMAGPIEQUERY7f3a"


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


__all__ = ["CHATML_TEMPLATE", "MAGPIE_PRESETS", "magpie_prompt", "render_chat"]
