"""OpenAI-compatible servers as a distilabel LLM: the course's steps against vLLM, TGI, llama.cpp's server,
``transformers serve`` or a hosted provider.

    >>> llm = ServerLLM(base_url="http://127.0.0.1:8000/v1", model="HuggingFaceTB/SmolLM2-135M-Instruct")
    >>> llm.api_key_env, llm.endpoint, "api_key" in llm.dump()
    ('OPENAI_API_KEY', 'chat', False)

Any distilabel task takes it where it takes :class:`~smolsynth.llm.LocalLLM` (``generate(rows, llm=...)``,
``magpie(n, llm=...)``, ``judge(rows, llm=...)``). Why not distilabel's own ``OpenAILLM`` (1.5.3)? It has no
text-completions endpoint (Magpie needs one), its structured output needs the ``instructor`` package and a server
that supports tools or JSON mode, and it retries through the ``openai`` client with no bound on the time a dead
server costs. This adapter is small and does what the course needs:

* **Two endpoints.** ``endpoint="chat"`` (``/chat/completions``: the server applies the chat template) or
  ``"completions"`` (``/completions``: the prompt is rendered here with ``tokenizer_id``'s chat template). Magpie needs
  the raw pre-query prompt, so on a chat endpoint it is refused with the fix (the most reported Magpie failure: the
  server wraps the template in its own, and the model writes fragments).
* **Structured output where the server has it.** With ``structured_output={"format": "json", "schema": ...}`` a
  request carries OpenAI's ``response_format`` (``json_schema``; vLLM, llama.cpp's server and hosted providers honour
  it); a regex (the UltraFeedback judge's grammar) goes as vLLM's ``guided_regex``. A server that rejects the field
  (``transformers serve`` 5.x rejects both) gets the request again without it, and ``schema_support`` records that. Either way the task's parser and :func:`smolsynth.records.validate_records` check
  every record: an invalid one is dropped and counted, never saved.
* **Bounded and never hanging.** ``concurrency`` requests at a time; each has ``timeout`` seconds; a refused
  connection, a timeout, a 429 or a 5xx is retried ``max_retries`` times with exponential backoff, then raises
  :class:`ServerError` naming the server and the fix. The runner sets that batch aside (``exception: ServerError``)
  and keeps every batch finished before.
* **Keys stay out of the data.** The key is read from the environment variable ``api_key_env`` at each request; it is
  not a field, so it is in no dump, cache key, dataset or card, and it is never printed.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, Dict, Iterator, List, Literal, Optional, Tuple

from pydantic import PositiveFloat, PositiveInt, PrivateAttr

from smolsynth.grammar import normalize_structured_output
from smolsynth.llm import MagpieFromChatTemplate
from smolsynth.templates import magpie_prompt, render_chat
from smolsynth.verbosity import import_distilabel, quiet_subclassing

__all__ = ["ServerError", "ServerLLM"]

_llm_base = import_distilabel("distilabel.models.llms.base")
_RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}
_CONSTRAINTS = ("response_format", "guided_regex")  # OpenAI's JSON schema field; vLLM's regex field
MAGPIE_ON_CHAT = ("Magpie needs the raw pre-query prompt, and a chat endpoint applies the server's chat template "
                  "around it (the model then writes fragments): use ServerLLM(endpoint='completions', "
                  "tokenizer_id=<the served model's hub id or folder>) on a server with /v1/completions.")


class ServerError(RuntimeError):
    """A server did not answer, or answered with an error: the message names the server and the fix."""


# distilabel's RuntimeParameter fields make pydantic warn once, at class creation, about distilabel's typing:
# nothing a learner can act on (as for LocalLLM).
with quiet_subclassing():
    class ServerLLM(_llm_base.LLM, MagpieFromChatTemplate):
        """A distilabel ``LLM`` on an OpenAI-compatible server (see the module docstring).

        Args:
            base_url: the API root, e.g. ``"http://127.0.0.1:8000/v1"`` (vLLM, ``transformers serve``, llama.cpp) or a
                provider's (``"https://api.openai.com/v1"``).
            model: the model name the server knows.
            api_key_env: the environment variable that holds the key (None: no key is sent, as for a local server).
            endpoint: ``"chat"`` or ``"completions"`` (needed by Magpie; renders prompts with ``tokenizer``).
            tokenizer_id: the hub id or folder whose chat template renders prompts for ``"completions"`` (default:
                ``model``).
            structured_output: ``{"format": "json", "schema": {...}}``, sent as ``response_format`` where the server takes it.
            timeout: seconds per request. max_retries: tries after the first. concurrency: requests in flight.
            seed: the base seed sent with each request (servers that honour ``seed`` then repeat their samples).
            generation_kwargs: defaults for :meth:`generate` (``max_new_tokens``, ``temperature``, ``top_p``, ``stop``).
        """

        base_url: str
        model: str
        api_key_env: Optional[str] = "OPENAI_API_KEY"
        endpoint: Literal["chat", "completions"] = "chat"
        tokenizer_id: Optional[str] = None
        structured_output: Optional[Dict[str, Any]] = None
        timeout: PositiveFloat = 60.0
        max_retries: int = 3
        concurrency: PositiveInt = 4
        seed: int = 0

        _schema_support: Optional[bool] = PrivateAttr(default=None)
        _tokenizer: Any = PrivateAttr(default=None)
        _salt: str = PrivateAttr(default="direct")
        _usage: Dict[str, int] = PrivateAttr(default_factory=lambda: {"input_tokens": 0, "output_tokens": 0,
                                                                       "requests": 0, "retries": 0})
        _lock: Any = PrivateAttr(default_factory=threading.Lock)

        @property
        def model_name(self) -> str:
            return self.model

        @property
        def schema_support(self) -> Optional[bool]:
            """Whether the server took ``response_format`` (None: not asked yet)."""
            return self._schema_support

        @property
        def usage(self) -> Dict[str, int]:
            """Tokens the server reported, requests sent and retries made so far."""
            return dict(self._usage)

        @property
        def magpie_problem(self) -> Optional[str]:
            """Why Magpie cannot run on this LLM (None: it can). :func:`smolsynth.instructions.magpie` checks it first."""
            return MAGPIE_ON_CHAT if self.endpoint == "chat" else None

        def load(self) -> None:
            super().load()

        @contextmanager
        def seeded(self, salt: str) -> Iterator[None]:
            """Seed every request inside the block from ``salt`` (the runner uses one per batch)."""
            previous, self._salt = self._salt, salt
            try:
                yield
            finally:
                self._salt = previous

        # ------------------------------------------------------------------------------------------------- prompts
        def _chat_tokenizer(self) -> Any:
            if self._tokenizer is None:
                from smolsynth.models import load_tokenizer

                self._tokenizer = load_tokenizer(self.tokenizer_id or self.model)
            return self._tokenizer

        def prepare_input(self, input: Any) -> Any:
            """What one request sends: chat messages (``"chat"``) or the rendered prompt text (``"completions"``)."""
            if self.use_magpie_template and self.endpoint == "chat":
                raise ValueError(MAGPIE_ON_CHAT)
            if isinstance(input, str):
                return input if self.endpoint == "completions" else [{"role": "user", "content": input}]
            messages = list(input)
            if self.endpoint == "chat":
                return messages
            tok = self._chat_tokenizer()
            if self.use_magpie_template and (not messages or messages[-1]["role"] != "user"):
                return magpie_prompt(tok, messages, pre_query_template=self.magpie_pre_query_template)
            return render_chat(tok, messages, add_generation_prompt=True)

        # ---------------------------------------------------------------------------------------------- generation
        def generate(  # type: ignore[override]
            self,
            inputs: List[Any],
            num_generations: int = 1,
            max_new_tokens: int = 128,
            temperature: float = 0.7,
            top_p: float = 1.0,
            stop: Optional[List[str]] = None,
            **ignored: Any,
        ) -> List[Dict[str, Any]]:
            """One request per input and generation, ``concurrency`` at a time; returns distilabel's
            ``{"generations", "statistics": {"input_tokens", "output_tokens", "finish_reasons"}}`` per input.

            Settings a server has no equivalent for (``repetition_penalty``, ``top_k``, ...) are not sent.
            """
            jobs: List[Tuple[int, int, Any, Optional[Dict[str, Any]]]] = []
            for i, item in enumerate(inputs):
                messages, spec = item if isinstance(item, tuple) else (item, None)
                spec = normalize_structured_output(spec) if spec is not None else self.structured_output
                prepared = self.prepare_input(messages)
                jobs += [(i, k, prepared, spec) for k in range(num_generations)]
            settings = {"max_tokens": max_new_tokens, "temperature": temperature, "top_p": top_p}
            if stop:
                settings["stop"] = [stop] if isinstance(stop, str) else list(stop)
            with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
                answers = list(pool.map(lambda job: self._request(job[2], job[3], job[1], settings), jobs))
            outputs = [{"generations": [], "statistics": {"input_tokens": [], "output_tokens": [], "finish_reasons": []}}
                       for _ in inputs]
            for (i, _, _, _), (text, n_in, n_out, reason) in zip(jobs, answers):
                out = outputs[i]
                out["generations"].append(text)
                out["statistics"]["input_tokens"].append(n_in)
                out["statistics"]["output_tokens"].append(n_out)
                out["statistics"]["finish_reasons"].append(reason)
            return outputs

        def _request(self, prepared: Any, spec: Optional[Dict[str, Any]], copy: int,
                     settings: Dict[str, Any]) -> Tuple[Optional[str], int, int, str]:
            body: Dict[str, Any] = {"model": self.model, **settings, "seed": self._seed_for(prepared, copy)}
            if self.endpoint == "chat":
                body["messages"] = prepared
            else:
                body["prompt"] = prepared
            if spec is not None and self._schema_support is not False:
                if spec.get("format") == "json":
                    body["response_format"] = {"type": "json_schema",
                                               "json_schema": {"name": "output", "schema": spec["schema"], "strict": True}}
                else:  # a regex: vLLM's extension (OpenAI has none)
                    body["guided_regex"] = spec["schema"]
            data = self._post(body)
            choice = (data.get("choices") or [{}])[0]
            text = choice.get("message", {}).get("content") if self.endpoint == "chat" else choice.get("text")
            usage = data.get("usage") or {}
            n_in, n_out = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
            with self._lock:
                self._usage["input_tokens"] += n_in
                self._usage["output_tokens"] += n_out
            reason = {"length": "length"}.get(choice.get("finish_reason"), "stop")
            return text, n_in, n_out, reason

        def _seed_for(self, prepared: Any, copy: int) -> int:
            text = json.dumps([self.seed, self._salt, prepared, copy], sort_keys=True, default=str)
            return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")

        def _post(self, body: Dict[str, Any]) -> Dict[str, Any]:
            import httpx

            url = f"{self.base_url.rstrip('/')}/{'chat/completions' if self.endpoint == 'chat' else 'completions'}"
            headers = {"Content-Type": "application/json"}
            key = os.environ.get(self.api_key_env) if self.api_key_env else None
            if key:
                headers["Authorization"] = f"Bearer {key}"
            started, problem = time.monotonic(), ""
            for attempt in range(self.max_retries + 1):
                if attempt:
                    with self._lock:
                        self._usage["retries"] += 1
                    time.sleep(min(0.5 * 2 ** (attempt - 1), 8.0))
                try:
                    with self._lock:
                        self._usage["requests"] += 1
                    response = httpx.post(url, json=body, headers=headers, timeout=self.timeout)
                except httpx.TimeoutException:
                    problem = f"no answer within timeout={self.timeout} s"
                    continue
                except httpx.TransportError as err:
                    problem = f"cannot connect ({type(err).__name__}: {err})"
                    continue
                if response.status_code in _RETRY_STATUS:
                    problem = f"HTTP {response.status_code}: {response.text[:200]}"
                    continue
                refused = [k for k in _CONSTRAINTS if k in body and k in response.text]
                if response.status_code >= 400 and refused:
                    self._schema_support = False  # the server refuses the field: send without it, validate after
                    return self._post({k: v for k, v in body.items() if k not in _CONSTRAINTS})
                if response.status_code in (401, 403):
                    raise ServerError(f"{url}: HTTP {response.status_code}, the server refused the key: set "
                                      f"${self.api_key_env} to a valid key (it is read from the environment).")
                if response.status_code >= 400:
                    raise ServerError(f"{url}: HTTP {response.status_code}: {response.text[:300]}")
                if any(k in body for k in _CONSTRAINTS):
                    self._schema_support = True
                return response.json()
            raise ServerError(f"{url}: {problem} after {self.max_retries + 1} tries in "
                              f"{time.monotonic() - started:.1f} s. Is the server running at base_url="
                              f"{self.base_url!r}? Start it, or pass another base_url.")
