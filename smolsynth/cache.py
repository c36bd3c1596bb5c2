"""Results cached by content, batch by batch (ARCHITECTURE.md, "Decisions").

distilabel's own cache ignores the input rows (change the data, get the old result). Here the key of a run is a hash
of what decides its result: the task's class and configuration (prompt templates, ``num_generations``, the LLM's
model id, dtype, seed and generation kwargs, ...), the weights of a local model folder (their
:func:`~smolsynth.models.weights_fingerprint`), the distilabel and smolsynth versions and the cache format. Inside a run, every
batch has its own key: the run key, the batch's position and a hash of its rows. Each finished batch is written at
once (atomically), so:

* the same task on the same rows returns at once from the cache;
* a change to one row recomputes only the batch that holds it; a change to the task recomputes everything;
* a run killed mid-way (even ``kill -9``) resumes: finished batches are read back, at most the batch in flight is
  redone, and because sampling is seeded per batch the result equals an uninterrupted run.

Files live under ``smolsynth_home()/cache`` (``$SMOLSYNTH_HOME``). ``run(..., cache=False)`` neither reads nor
writes; ``force=True`` recomputes and overwrites. Limits: a change to the *code* of a custom task class is not seen
(its configuration is); use ``force=True`` after editing one.

    >>> from smolsynth.cache import fingerprint
    >>> fingerprint({"b": 1, "a": [1, 2]}) == fingerprint({"a": [1, 2], "b": 1})
    True
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional

CACHE_FORMAT = 1
# Step fields that do not change results (names are assigned per process; resources and batch sizes of a Pipeline).
VOLATILE_FIELDS = {"name", "resources", "input_batch_size", "use_cache", "runtime_parameters_info", "pipeline"}


def cache_root() -> Path:
    """Where cached results are kept: ``smolsynth_home() / "cache"``."""
    from smolsynth.settings import smolsynth_home

    return smolsynth_home() / "cache"


def _default(obj: Any) -> Any:
    if isinstance(obj, type):
        if hasattr(obj, "model_json_schema"):
            return obj.model_json_schema()
        return f"{obj.__module__}.{obj.__qualname__}"
    if isinstance(obj, (set, frozenset)):
        return sorted(obj, key=repr)
    if hasattr(obj, "tolist"):  # numpy arrays and scalars
        return obj.tolist()
    if hasattr(obj, "get_secret_value"):  # never hash (or store) secrets
        return "<secret>"
    return repr(obj)


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace: equal content gives equal text."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_default, ensure_ascii=False)


def fingerprint(obj: Any) -> str:
    """A short sha256 hex digest of ``obj``'s canonical JSON."""
    return hashlib.sha256(canonical_json(obj).encode("utf-8")).hexdigest()[:24]


def task_config(task: Any) -> Dict[str, Any]:
    """The part of a distilabel step's configuration that decides its results (its ``dump()`` minus volatile
    fields), with its class, the distilabel and smolsynth versions and, when the step's ``llm.model`` is a local
    folder (or the tiny model), the fingerprint of the weights in it (retrained weights: new results)."""
    import distilabel

    import smolsynth

    dumped = task.dump() if hasattr(task, "dump") else {"repr": repr(task)}

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items() if k not in VOLATILE_FIELDS}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    config = {"class": f"{type(task).__module__}.{type(task).__qualname__}", "config": clean(dumped),
              "distilabel": distilabel.__version__, "smolsynth": smolsynth.__version__, "cache_format": CACHE_FORMAT}
    weights = _weights_of(task)
    if weights is not None:
        config["weights"] = weights
    return config


def _weights_of(task: Any) -> Optional[str]:
    """:func:`smolsynth.models.weights_fingerprint` of the step's ``llm.model``, when it is a local folder."""
    model = getattr(getattr(task, "llm", None), "model", None)
    if not isinstance(model, str):
        return None
    from smolsynth.models import weights_fingerprint

    try:
        return weights_fingerprint(model)
    except Exception:  # a model id this machine cannot resolve: no folder, so no fingerprint
        return None


class ResultCache:
    """Batch results of one run configuration, stored as JSON files under ``root/runs/<key>/``.

    >>> import tempfile
    >>> c = ResultCache("demo", root=tempfile.mkdtemp())
    >>> k = c.batch_key(0, [{"instruction": "hi"}])
    >>> c.get(k) is None
    True
    >>> c.put(k, {"kept": [{"generation": "hello"}]})
    >>> c.get(k)["kept"]
    [{'generation': 'hello'}]
    """

    def __init__(self, key: str, *, root: Optional[os.PathLike] = None, config: Optional[Dict[str, Any]] = None,
                 enabled: bool = True) -> None:
        self.key = key
        self.enabled = enabled
        self.dir = Path(root) if root is not None else cache_root()
        self.dir = self.dir / "runs" / key
        if enabled and config is not None:
            self.dir.mkdir(parents=True, exist_ok=True)
            config_file = self.dir / "config.json"
            if not config_file.exists():
                atomic_write(config_file, json.dumps(config, indent=1, sort_keys=True, default=_default))

    def batch_key(self, index: int, rows: List[Dict[str, Any]]) -> str:
        """The key of batch ``index`` holding ``rows`` in this run."""
        return fingerprint({"run": self.key, "index": index, "rows": [fingerprint(r) for r in rows]})

    def _path(self, batch_key: str) -> Path:
        return self.dir / f"batch-{batch_key}.json"

    def get(self, batch_key: str) -> Optional[Dict[str, Any]]:
        """The stored payload of a batch, or None (not stored, caching off, or an unreadable file)."""
        if not self.enabled:
            return None
        try:
            return json.loads(self._path(batch_key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def put(self, batch_key: str, payload: Dict[str, Any]) -> None:
        """Store a batch's payload atomically (a crash leaves either the old state or the whole new file)."""
        if not self.enabled:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        atomic_write(self._path(batch_key), json.dumps(payload, default=_default, ensure_ascii=False))

    def batches(self) -> List[Path]:
        """The batch files stored for this configuration."""
        return sorted(self.dir.glob("batch-*.json")) if self.dir.exists() else []

    def clear(self) -> None:
        """Delete this configuration's stored batches."""
        shutil.rmtree(self.dir, ignore_errors=True)


def clear_cache(root: Optional[os.PathLike] = None) -> None:
    """Delete every cached result (under ``root``, default :func:`cache_root`)."""
    shutil.rmtree(Path(root) if root is not None else cache_root(), ignore_errors=True)


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that a crash (kill -9 included) leaves the old file or the new one, never half
    of one: a temporary file in the same folder, flushed to disk, then renamed over ``path``."""
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
