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
  gets the request again without it (``schema_support`` is then False). A server may also accept a field and ignore
  it (``transformers serve`` 5.23 ignores ``response_format`` with a logged warning, and rejects ``guided_regex``):
  that cannot be seen from the answer, so either way the task's parser and
  :func:`smolsynth.records.validate_records` check every output: an invalid one is dropped and counted, never saved.
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

__all__ = ["LocalServer", "ServerError", "ServerLLM", "free_port"]

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
            seed: the base seed of the ``seed`` sent with each request (equal prompts get different ones). A server
                that seeds each request repeats its samples; ``transformers serve`` seeds torch's global generator,
                so requests in flight together do not.
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
            """False once the server rejected a constraint field (then none is sent), True once it accepted one
            (which does not prove it applied it), None before either."""
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
            seen: Dict[str, int] = {}  # equal prompts in one call are copies: each gets its own seed (Magpie's all are)
            for i, item in enumerate(inputs):
                messages, spec = item if isinstance(item, tuple) else (item, None)
                spec = normalize_structured_output(spec) if spec is not None else self.structured_output
                prepared = self.prepare_input(messages)
                key = json.dumps([prepared, spec], sort_keys=True, default=str)
                for _ in range(num_generations):
                    jobs.append((i, seen.get(key, 0), prepared, spec))
                    seen[key] = seen.get(key, 0) + 1
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


def _sampling_copy(folder: "os.PathLike[str]", target: "os.PathLike[str]") -> str:
    """``folder`` as links, with ``do_sample: true`` in its generation config. ``transformers serve`` 5.23 samples
    only when the model's generation config says so, whatever the request's temperature (SmolLM2's does not: every
    request would be greedy, and N Magpie rows alike); with it, temperature 0 is still greedy (the server sets
    ``do_sample=False`` for it). The weights are links, not copies."""
    from pathlib import Path

    folder, target = Path(folder), Path(target)
    target.mkdir(parents=True, exist_ok=True)
    for item in folder.iterdir():
        if item.name != "generation_config.json":
            (target / item.name).symlink_to(item.resolve())
    config_file = folder / "generation_config.json"
    config = json.loads(config_file.read_text()) if config_file.exists() else {}
    (target / "generation_config.json").write_text(json.dumps({**config, "do_sample": True}))
    return str(target)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (the system picks it)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalServer:
    """``transformers serve`` on a free loopback port, serving one model: a real OpenAI-compatible server to try the
    course's steps against (notebook 08, tests/test_servers.py). Needs the ``serving`` extra (fastapi, uvicorn).

    Use it as a context manager, or call :meth:`stop` (it is also stopped when Python exits)::

        with LocalServer("smolsynth/smollm2-135m") as server:
            answers = generate(["Name a fruit."], llm=server.llm())

    Attributes: ``base_url`` (``http://127.0.0.1:<port>/v1``), ``model`` (the name requests use: a folder of links
    to the model's files, whose generation config lets the server sample: see :func:`_sampling_copy`), ``log`` (the
    server's output file).
    """

    def __init__(self, model: Optional[str] = None, *, port: Optional[int] = None, startup_timeout: float = 120,
                 log: Optional[str] = None) -> None:
        import atexit
        import subprocess
        import sys
        import tempfile
        import urllib.request
        from pathlib import Path

        from smolsynth.models import model_path, resolve_model

        self.model_id = resolve_model(model)
        self.model = str(model_path(self.model_id))
        if not Path(self.model).is_dir():
            raise ValueError(f"model={self.model_id!r}: LocalServer serves a model folder on this machine (the "
                             "embedded smolsynth/smollm2-135m, smolsynth/tiny, or a downloaded checkpoint).")
        if port is None:
            port = free_port()
        self.base_url = f"http://127.0.0.1:{port}/v1"
        scratch = Path(tempfile.mkdtemp(prefix="smolsynth-serve-"))
        self.log = log or str(scratch / "serve.log")
        self.model = _sampling_copy(Path(self.model), scratch / "model")
        cli = Path(sys.executable).with_name("transformers")
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        env.setdefault("OMP_NUM_THREADS", "1")
        self.process = subprocess.Popen(
            [str(cli), "serve", self.model, "--host", "127.0.0.1", "--port", str(port), "--device", "cpu",
             "--dtype", "float32"], env=env, stdout=open(self.log, "w"), stderr=subprocess.STDOUT)
        atexit.register(self.stop)
        deadline = time.monotonic() + startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerError(f"transformers serve exited with {self.process.returncode} (needs the serving "
                                  f"extra: pip install 'transformers[serving]'); its log: "
                                  f"{Path(self.log).read_text()[-1500:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise ServerError(f"transformers serve did not answer within startup_timeout={startup_timeout} s; its log: "
                          f"{self.log}")

    def llm(self, **kwargs: Any) -> "ServerLLM":
        """A :class:`ServerLLM` on this server (``endpoint="completions"`` renders prompts with the model's own
        tokenizer); ``kwargs`` are ServerLLM settings."""
        if kwargs.get("endpoint") == "completions":
            kwargs.setdefault("tokenizer_id", self.model_id)
        return ServerLLM(base_url=self.base_url, model=self.model, api_key_env=None, **kwargs)

    def stop(self, *, kill: bool = False) -> None:
        """Stop the server (``kill=True``: at once, as a crash would)."""
        import signal
        import subprocess

        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def __enter__(self) -> "LocalServer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.process.poll() is None else "stopped"
        return f"LocalServer({self.model_id!r}, {self.base_url}, {state})"
