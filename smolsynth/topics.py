"""Topic trees: cover a subject instead of clustering in it (notebook 06).

Ask a model for 200 questions about travel and it writes twenty questions about packing, many times over. The remedy
Kiln and others made popular: a **tree of topics** (a few subtopics per node, nested to a chosen depth), then N
samples **per leaf**, so every corner of the subject gets its share. The pieces, in the order a learner uses them::

    TopicTree("Travel")                 a root topic
      ├─ .expand(depth=2, per_node=3)   a model proposes the subtopics of every leaf, level by level, shown the
      │                                 siblings that exist so it does not repeat them (JSON-constrained: always parses;
      │                                 a repeat of a sibling or an ancestor is dropped and counted)
      ├─ .add / .remove / .rename       the human edits the tree (a 135M model proposes "Cruisespeed": fix it)
      └─ leaf_prompts(tree, task, guidance=...)   one prompt per leaf, with the human's guidance and few-shot
            │                                     examples, ``num_generations`` samples each
            └─► generation.generate / records.generate_records
                  └─► drop_echoes   a sample that copies the guidance or an example is dropped and counted
                        └─► coverage(rows, tree): samples per leaf, per run

**Guidance** is a short free-text note ("global topics, not only US-centric", "write in Spanish") that goes into the
prompts of :meth:`TopicTree.expand` and :func:`leaf_prompts` and is recorded with every row (``guidance``).

Why the proposal prompt holds two worked examples as earlier chat turns: asked plainly, SmolLM2-135M-Instruct answered
"Travel, Travel, Travel" for the subtopics of Travel (measured, greedy and at T=0.7); with the examples it names
real subtopics most of the time. It still repeats its parent, or invents words: the filters drop the repeats, and the
human edits what remains.

    >>> tree = TopicTree("Travel")
    >>> tree.add("Food and drink > Street food").add("Transport")
    TopicTree('Travel', leaves=2)
    >>> tree.leaves()
    ['Travel > Food and drink > Street food', 'Travel > Transport']
    >>> print(tree)
    Travel
    ├── Food and drink
    │   └── Street food
    └── Transport
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

from smolsynth.arguments import check_number, check_text, check_texts
from smolsynth.report import Report, count_reasons
from smolsynth.rows import Result, Row, as_rows, partition
from smolsynth.stats import normalize_text

__all__ = ["SEPARATOR", "Topic", "TopicTree", "coverage", "drop_echoes", "leaf_prompts", "subtopic_schema"]

SEPARATOR = " > "
"""Between the names of a topic path: ``"Travel > Food and drink > Street food"``."""

TOPIC_PATTERN = r"^[A-Z][A-Za-z0-9 ,'&/-]{1,39}$"
"""A topic name: a capital, then up to 39 letters, digits, spaces and a little punctuation (no quotes, no newlines)."""

_EXAMPLES = [  # (path, existing subtopics, answer): the two worked examples every proposal prompt starts with
    (["Sports"], [], ["Football", "Tennis", "Swimming", "Cycling", "Athletics"]),
    (["Music", "Instruments"], ["Piano"], ["Guitar", "Violin", "Drums", "Flute", "Trumpet"]),
]


# --------------------------------------------------------------------------------------------------------- the tree
@dataclass
class Topic:
    """One node: its ``name``, its ``subtopics`` and who made it (``"model"`` or ``"human"``)."""

    name: str
    subtopics: List["Topic"] = field(default_factory=list)
    source: str = "human"

    def find(self, name: str) -> Optional["Topic"]:
        """The direct subtopic called ``name`` (compared case- and space-insensitively), or None."""
        key = normalize_text(name)
        return next((t for t in self.subtopics if normalize_text(t.name) == key), None)


class TopicTree:
    """A tree of topics under one root. Paths are names joined by ``" > "``, with or without the root's name:
    ``tree.add("Food and drink > Street food")`` and ``tree.add("Travel > Food and drink > Street food")`` are the
    same. Every edit returns the tree, so edits chain.

    >>> TopicTree("Travel").add("Transport").rename("Transport", "Getting around").leaves()
    ['Travel > Getting around']
    """

    def __init__(self, root: str) -> None:
        self.root = Topic(check_text("root", root).strip())

    # ---------------------------------------------------------------------------------------------- paths
    def _names(self, path: Union[str, Sequence[str]], argument: str = "path") -> List[str]:
        names = [n.strip() for n in (path.split(SEPARATOR.strip()) if isinstance(path, str) else path)]
        if not names or not all(names):
            raise ValueError(f"{argument}={path!r}: pass topic names joined by ' > ', e.g. "
                             f"'{self.root.name} > Food and drink'.")
        if normalize_text(names[0]) == normalize_text(self.root.name) and len(names) > 1:
            names = names[1:]
        return names

    def _node(self, names: List[str], argument: str = "path") -> Topic:
        node = self.root
        for depth, name in enumerate(names):
            child = node.find(name)
            if child is None:
                where = SEPARATOR.join([self.root.name, *names[:depth]])
                have = [t.name for t in node.subtopics]
                raise KeyError(f"{argument}: {where!r} has no subtopic {name!r} (it has {have}); tree.leaves() "
                               "lists the paths.")
            node = child
        return node

    # ---------------------------------------------------------------------------------------------- edits
    def add(self, path: Union[str, Sequence[str]], *, source: str = "human") -> "TopicTree":
        """Add the topic at ``path``, and any missing topic above it; adding one that exists changes nothing."""
        node = self.root
        for name in self._names(path):
            child = node.find(name)
            if child is None:
                child = Topic(name, source=source)
                node.subtopics.append(child)
            node = child
        return self

    def remove(self, path: Union[str, Sequence[str]]) -> "TopicTree":
        """Remove the topic at ``path`` with everything under it."""
        names = self._names(path)
        parent = self._node(names[:-1])
        parent.subtopics.remove(self._node(names))
        return self

    def rename(self, path: Union[str, Sequence[str]], to: str) -> "TopicTree":
        """Rename the topic at ``path`` to ``to`` (its subtopics stay). Refused when a sibling has that name."""
        names = self._names(path)
        check_text("to", to)
        parent, node = self._node(names[:-1]), self._node(names)
        clash = parent.find(to)
        if clash is not None and clash is not node:
            raise ValueError(f"to={to!r}: {SEPARATOR.join([self.root.name, *names[:-1]])!r} already has it; "
                             "remove one of the two first.")
        node.name, node.source = to.strip(), "human"
        return self

    # ---------------------------------------------------------------------------------------------- reading
    def leaves(self) -> List[str]:
        """Every leaf's full path, root first, in tree order."""
        out: List[str] = []

        def walk(node: Topic, prefix: List[str]) -> None:
            path = prefix + [node.name]
            if not node.subtopics:
                out.append(SEPARATOR.join(path))
            for child in node.subtopics:
                walk(child, path)

        walk(self.root, [])
        return out

    def depth(self) -> int:
        """Levels below the root (0 for a lone root)."""
        return max(leaf.count(SEPARATOR) for leaf in self.leaves())

    def to_dict(self) -> Dict[str, Any]:
        """The tree as nested dicts (``name``, ``source``, ``subtopics``): what :meth:`save` writes."""
        def plain(node: Topic) -> Dict[str, Any]:
            return {"name": node.name, "source": node.source, "subtopics": [plain(t) for t in node.subtopics]}
        return plain(self.root)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "TopicTree":
        """The tree :meth:`to_dict` described."""
        def build(d: Dict[str, Any]) -> Topic:
            return Topic(d["name"], [build(t) for t in d.get("subtopics", [])], d.get("source", "human"))
        tree = cls(data["name"])
        tree.root = build(data)
        return tree

    def save(self, path: Union[str, Path]) -> Path:
        """Write the tree as JSON; returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=1), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: Union[str, Path]) -> "TopicTree":
        """The tree :meth:`save` wrote."""
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))

    def __str__(self) -> str:
        lines = [self.root.name]

        def walk(node: Topic, indent: str) -> None:
            for i, child in enumerate(node.subtopics):
                last = i == len(node.subtopics) - 1
                lines.append(f"{indent}{'└── ' if last else '├── '}{child.name}")
                walk(child, indent + ("    " if last else "│   "))

        walk(self.root, "")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"TopicTree({self.root.name!r}, leaves={len(self.leaves())})"

    # ---------------------------------------------------------------------------------------------- the model
    def expand(self, *, depth: int = 2, per_node: int = 3, guidance: Optional[str] = None,
               model: Optional[str] = None, llm: Any = None, temperature: float = 0.7, seed: int = 0,
               max_new_tokens: int = 96, progress: bool = True, cache: bool = True) -> Result:
        """Let a model propose ``per_node`` subtopics for every leaf above ``depth``, one level at a time (all the
        leaves of a level in one batch), and add them to the tree (``source="model"``).

        The model sees the topic's path, the subtopics it already has (a human's, or an earlier call's: it is asked
        not to repeat them), ``guidance`` when given, and two worked examples. Its answer is constrained to a JSON
        list of ``per_node + 2`` names (:func:`subtopic_schema`); the first ``per_node`` that repeat neither an
        ancestor, a sibling nor each other are added. A node that already has ``per_node`` subtopics is left as it
        is, so calling again after a hand edit only fills in.

        Returns:
            A :class:`~smolsynth.rows.Result` with one row per proposed name: ``parent`` (a path), ``topic``, and,
            for the dropped ones, ``reason`` (``repeats_ancestor``, ``repeats_sibling``, ``duplicate``,
            ``not_needed``: beyond ``per_node``), or the parse failure of the whole answer.
        """
        from smolsynth.llm import LocalLLM
        from smolsynth.runner import run
        from smolsynth.verbosity import import_distilabel, quiet_distilabel

        check_number("depth", depth, minimum=1, maximum=5, integer=True)
        check_number("per_node", per_node, minimum=1, maximum=10, integer=True)
        check_number("temperature", temperature, minimum=0.0, maximum=2.0)
        if guidance is not None:
            check_text("guidance", guidance)
        started = time.perf_counter()
        if llm is None:
            with quiet_distilabel():
                llm = LocalLLM(model, seed=seed, structured_output={"format": "json",
                                                                    "schema": subtopic_schema(per_node + 2)},
                               generation_kwargs={"max_new_tokens": max_new_tokens, "temperature": temperature})
        with quiet_distilabel():
            task = import_distilabel("distilabel.steps.tasks").ChatGeneration(llm=llm)
        kept: List[Row] = []
        dropped: List[Row] = []
        steps: List[Report] = []
        for level in range(depth):
            frontier = [(path, node) for path, node in self._nodes_at(level) if len(node.subtopics) < per_node]
            if not frontier:
                continue
            rows = [{"messages": _proposal_messages(path, [t.name for t in node.subtopics], per_node, guidance),
                     "parent": SEPARATOR.join(path)} for path, node in frontier]
            result = run(task, rows, progress=progress, cache=cache, desc=f"expand level {level + 1}")
            steps.append(result.report)
            by_parent = {r["parent"]: r for r in result.rows}
            for row in result.dropped_rows:
                dropped.append({"parent": row["parent"], "topic": None, "reason": row["reason"],
                                "raw_output": row.get("generation")})
            for path, node in frontier:
                row = by_parent.get(SEPARATOR.join(path))
                if row is None:
                    continue
                try:
                    names = json.loads(row["generation"])["subtopics"]
                except (ValueError, KeyError, TypeError):
                    dropped.append({"parent": row["parent"], "topic": None, "reason": "unparsed_output",
                                    "raw_output": row["generation"]})
                    continue
                answered: set = set()
                for name in names:
                    reason = _verdict(name, path, node, per_node, answered)
                    answered.add(normalize_text(name))
                    entry = {"parent": row["parent"], "topic": name.strip()}
                    if reason:
                        dropped.append({**entry, "reason": reason})
                    else:
                        node.subtopics.append(Topic(name.strip(), source="model"))
                        kept.append(entry)
        report = Report("expand_topics", rows_in=len(kept) + len(dropped), rows_out=len(kept),
                        dropped=count_reasons(dropped), input_tokens=sum(s.input_tokens for s in steps),
                        output_tokens=sum(s.output_tokens for s in steps),
                        seconds=round(time.perf_counter() - started, 3), model=getattr(llm, "model_name", None))
        return Result(kept, dropped, report, steps, params={"depth": depth, "per_node": per_node,
                                                            "guidance": guidance, "seed": seed})

    def _nodes_at(self, level: int) -> List[tuple]:
        out = [([self.root.name], self.root)]
        for _ in range(level):
            out = [(path + [c.name], c) for path, node in out for c in node.subtopics]
        return out


def subtopic_schema(n: int) -> Dict[str, Any]:
    """The JSON schema of a proposal: ``{"subtopics": [n names]}``, each name held to :data:`TOPIC_PATTERN`.

    >>> subtopic_schema(3)["properties"]["subtopics"]["minItems"]
    3
    """
    return {"type": "object", "required": ["subtopics"],
            "properties": {"subtopics": {"type": "array", "minItems": n, "maxItems": n,
                                         "items": {"type": "string", "pattern": TOPIC_PATTERN}}}}


def _proposal_prompt(path: Sequence[str], existing: Sequence[str], n: int, guidance: Optional[str]) -> str:
    text = f"Topic path: {SEPARATOR.join(path)}\nList {n} subtopics of \"{path[-1]}\"."
    if existing:
        text += f" Not these (they exist already): {', '.join(existing)}."
    if guidance:
        text += f"\nGuidance: {guidance}"
    return text


def _proposal_messages(path: Sequence[str], existing: Sequence[str], per_node: int,
                       guidance: Optional[str]) -> List[Dict[str, str]]:
    messages: List[Dict[str, str]] = []
    for ex_path, ex_existing, answer in _EXAMPLES:
        messages += [{"role": "user", "content": _proposal_prompt(ex_path, ex_existing, len(answer), None)},
                     {"role": "assistant", "content": json.dumps({"subtopics": answer})}]
    return messages + [{"role": "user", "content": _proposal_prompt(path, existing, per_node + 2, guidance)}]


def _verdict(name: str, path: Sequence[str], node: Topic, per_node: int, answered: set) -> Optional[str]:
    """Why a proposed name is not added (None: it is): the same name twice in one answer, a subtopic the node
    had before, one of its ancestors, or the node is full."""
    key = normalize_text(name)
    if key in answered:
        return "duplicate"
    if node.find(name) is not None:
        return "repeats_sibling"
    if any(normalize_text(a) == key for a in path):
        return "repeats_ancestor"
    if len(node.subtopics) >= per_node:
        return "not_needed"
    return None


# ------------------------------------------------------------------------------------------------ samples per leaf
def leaf_prompts(tree: TopicTree, task: str, *, guidance: Optional[str] = None,
                 examples: Sequence[str] = (), column: str = "instruction") -> List[Row]:
    """One prompt per leaf of ``tree``: ``task`` with ``{topic}`` (the leaf's name) and ``{path}`` (its full path)
    filled in, then the human's ``guidance`` and a few ``examples`` of good outputs when given.

    Generate ``n`` samples per leaf with ``generate(rows, num_generations=n)`` (or
    :func:`smolsynth.records.generate_records`).

    Returns:
        Rows with ``topic``, ``topic_path``, ``guidance`` (None when not given), ``examples`` (a list) and the prompt
        in ``column``. :func:`drop_echoes` reads the last two to drop samples that copy them.

    >>> tree = TopicTree("Travel").add("Transport")
    >>> print(leaf_prompts(tree, "Write a question a traveller asks about {topic}.", guidance="Be brief.")[0]["instruction"])
    Write a question a traveller asks about Transport (within Travel > Transport).
    Guidance: Be brief.
    """
    if not isinstance(tree, TopicTree):
        raise TypeError(f"tree is a {type(tree).__name__}: pass a smolsynth.topics.TopicTree.")
    check_text("task", task)
    if "{topic}" not in task:
        raise ValueError(f"task={task!r} has no {{topic}}: write where the leaf's name goes, e.g. "
                         "'Write a question a traveller asks about {topic}.'")
    if guidance is not None:
        check_text("guidance", guidance)
    examples = check_texts("examples", list(examples), minimum=0)
    rows: List[Row] = []
    for leaf in tree.leaves():
        topic = leaf.split(SEPARATOR)[-1]
        text = task.replace("{topic}", f"{topic} (within {leaf})" if "{path}" not in task else topic)
        text = text.replace("{path}", leaf)
        if guidance:
            text += f"\nGuidance: {guidance}"
        if examples:
            text += "\nExamples of good ones:\n" + "\n".join(f"- {e}" for e in examples)
        rows.append({"topic": topic, "topic_path": leaf, "guidance": guidance, "examples": list(examples),
                     column: text})
    return rows


def drop_echoes(data: Any, *, column: str = "generation") -> Result:
    """Drop the samples that copy their prompt instead of following it: the row's ``guidance`` written into the
    output (``copies_guidance``), or one of its few-shot ``examples`` written again (``copies_example``), both
    compared after :func:`~smolsynth.stats.normalize_text`. SmolLM2-135M does both (measured: two of six tool-call
    requests were the guidance, word for word).

    ``column`` holds a string, or a record (a dict: its string values are compared).

    >>> drop_echoes([{"generation": "Cities from every continent.", "guidance": "Cities from every continent"},
    ...              {"generation": "Rain in Lima?", "guidance": "Be brief.", "examples": ["Rain in Lima?"]},
    ...              {"generation": "Sun in Oslo?", "guidance": "Be brief.", "examples": ["Rain in Lima?"]}]
    ...             ).report.dropped
    {'copies_guidance': 1, 'copies_example': 1}
    """
    def strings(value: Any) -> List[str]:
        if isinstance(value, dict):
            return [s for v in value.values() for s in strings(v)]
        return [value] if isinstance(value, str) else []

    def check(row: Row) -> Optional[str]:
        texts = [normalize_text(t) for t in strings(row.get(column))]
        guidance = normalize_text(row.get("guidance") or "")
        if guidance and any(guidance in t for t in texts):
            return "copies_guidance"
        examples = {normalize_text(e) for e in row.get("examples") or [] if normalize_text(e)}
        if any(e in t for e in examples for t in texts):
            return "copies_example"
        return None

    return partition(as_rows(data), check, step="drop_echoes")


def coverage(data: Any, tree: Optional[TopicTree] = None, *, by: str = "run_id"):
    """Samples per leaf (rows) and per run (columns, from the ``by`` column when the rows have it), as a pandas
    DataFrame with a ``total`` column; every leaf of ``tree`` is listed, the ones without a sample with 0.

    >>> coverage([{"topic_path": "T > A", "run_id": "r1"}], TopicTree("T").add("A").add("B"))["total"].to_dict()
    {'T > A': 1, 'T > B': 0}
    """
    import pandas as pd

    rows = as_rows(data, argument="data")
    if any("topic_path" not in r for r in rows):
        raise ValueError("coverage() needs rows with a 'topic_path' column: pass the rows generated from "
                         "leaf_prompts(...).")
    frame = pd.DataFrame([{"topic_path": r["topic_path"], by: r.get(by) or "(untagged)"} for r in rows],
                         columns=["topic_path", by])
    table = pd.crosstab(frame["topic_path"], frame[by]) if rows else pd.DataFrame(index=pd.Index([], name="topic_path"))
    if tree is not None:
        table = table.reindex(tree.leaves(), fill_value=0)
    table.columns.name = None
    table.index.name = "topic_path"
    table["total"] = table.sum(axis=1)
    return table.astype(int)
