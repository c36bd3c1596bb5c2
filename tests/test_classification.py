"""smolsynth.classification on the tiny model (real distilabel tasks, real constrained decoding, a real Trainer on the
tiny encoder): assignment, the resumable CSV (a kill -9 in the middle of a run), duplicates, conflicts, re-labelling,
training and evaluation, and the hand-written evaluation set."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from conftest import OFFLINE_ENV, REPO

from smolsynth import classification as c


def test_assign_is_balanced_seeded_and_checks_its_input() -> None:
    rows = c.assign(c.SUPPORT_LABELS, 10, seed=3)
    counts = Counter(r["label"] for r in rows)
    assert set(counts) == set(c.SUPPORT_LABELS) and max(counts.values()) - min(counts.values()) <= 1
    assert rows == c.assign(c.SUPPORT_LABELS, 10, seed=3) and rows != c.assign(c.SUPPORT_LABELS, 10, seed=4)
    assert all(r["type"] in c.SUPPORT_CATEGORIES[r["category"]] for r in rows)
    with pytest.raises(ValueError, match="labels= should be a dict"):
        c.assign(["billing", "delivery"], 4)
    with pytest.raises(ValueError, match=r"labels\['a'\] should be a one-line description"):
        c.assign({"a": "", "b": "second"}, 4)


def test_conflicts_duplicates_and_their_resolution() -> None:
    rows = [{"id": 0, "text": "Where is my parcel?", "label": "delivery", "generator": "g1"},
            {"id": 1, "text": "where is my parcel", "label": "billing", "generator": "g1"},
            {"id": 2, "text": "Where is my parcel?", "label": "delivery", "generator": "g2"},
            {"id": 3, "text": "I forgot my password again", "label": "account", "generator": "g2"}]
    conflicts = c.label_conflicts(rows)
    assert sorted(zip(conflicts.id_a, conflicts.id_b)) == [(0, 1), (1, 2)]
    table = c.duplicates_by_generator(rows).set_index("generator")
    assert table.loc["g1", "exact %"] == 50.0 and table.loc["g2", "exact %"] == 0.0 and table.loc["all", "rows"] == 4
    dropped = c.resolve_conflicts(rows)
    assert [r["id"] for r in dropped.rows] == [3]
    assert dropped.report.dropped == {"label_conflict": 3}
    agreeing = c.resolve_conflicts([{**r, "predicted_label": "delivery"} for r in rows], how="keep_agreeing")
    assert [r["id"] for r in agreeing.rows] == [0, 2, 3]


def test_the_hand_written_messages_cover_every_label() -> None:
    rows = c.real_messages()
    assert len(rows) == 80 and Counter(r["label"] for r in rows) == {label: 20 for label in c.SUPPORT_LABELS}
    assert len({r["text"] for r in rows}) == 80


_RUN = """
import sys
from smolsynth import classification as c
c.generate_texts(n=24, batch_size=4, path=sys.argv[1], max_new_tokens=40, progress=False, cache=False)
"""


def _generate(path: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", _RUN, str(path)], env=env, cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def test_a_killed_generation_resumes_to_the_same_file(tmp_path: Path, engine_home: Path) -> None:
    """kill -9 after the first batches are in the file; the second run writes only what is missing, and the file
    ends byte for byte like an uninterrupted run's."""
    env = {**os.environ, **OFFLINE_ENV, "SMOLSYNTH_HOME": str(engine_home), "OMP_NUM_THREADS": "1"}
    whole = tmp_path / "whole.csv"
    done = _generate(whole, env)
    assert done.wait(timeout=600) == 0, done.stderr.read()

    killed = tmp_path / "killed.csv"
    proc = _generate(killed, env)
    progress = killed.with_name(killed.name + ".progress")
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None:
        if progress.exists() and progress.read_text().count("\n") >= 3:  # the header line and two batches
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed: give it more rows"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    batches_before = progress.read_text().count("\n") - 1
    assert 2 <= batches_before < 6

    resumed = _generate(killed, env)
    assert resumed.wait(timeout=600) == 0, resumed.stderr.read()
    assert killed.read_bytes() == whole.read_bytes()
    dropped = killed.with_name(killed.name + ".dropped.jsonl")
    assert dropped.read_bytes() == whole.with_name(whole.name + ".dropped.jsonl").read_bytes()
    result = c.generate_texts(n=24, batch_size=4, path=killed, max_new_tokens=40, progress=False, cache=False)
    assert result.report.cached_rows == 24 and len(result.rows) + len(result.dropped_rows) == 24
    fresh = c.generate_texts(n=24, batch_size=4, max_new_tokens=40, progress=False, cache=False)  # no file at all
    assert (result.rows, result.dropped_rows) == (fresh.rows, fresh.dropped_rows)  # what is read back is what was made
    with pytest.raises(ValueError, match="holds a run with other settings"):
        c.generate_texts(n=24, batch_size=4, path=killed, max_new_tokens=40, seed=1, progress=False)


def test_generate_relabel_train_and_evaluate_on_the_tiny_model(tmp_path: Path, engine_home: Path) -> None:
    # the tiny model's texts rarely end by themselves: the cut-off ones are dropped, unless allow_truncated
    strict = c.generate_texts(n=16, max_new_tokens=160, progress=False)
    texts = c.generate_texts(n=16, max_new_tokens=160, progress=False, allow_truncated=True)
    cut = strict.report.dropped.get("truncated", 0)
    assert cut and texts.report.rows_in == 16 == len(texts.rows) + len(texts.dropped_rows)
    assert len(texts.rows) == len(strict.rows) + cut and "truncated" not in texts.report.dropped
    fields = c.text_schema()["properties"]
    for row in texts.rows:
        assert row["label"] in c.SUPPORT_LABELS and row["text"].strip() and row["reasoning"].strip()
        for column, field in fields.items():  # the grammar held: characters and length (less the U+FFFD that
            value = row[column].replace("\ufffd", "")  # stand for a multi-byte character the random model cut)
            assert re.fullmatch(field["pattern"], value) and len(value) <= field["maxLength"], (column, value)
    for row in strict.rows:  # what is kept without allow_truncated ended by itself, before the length limit
        assert all(len(row[column]) < field["maxLength"] - 1 for column, field in fields.items())
    assert {r["generator"] for r in texts.rows + texts.dropped_rows} == {
        "smolsynth/tiny (T=1.0)", "smolsynth/tiny (T=0.7)"}

    relabelled = c.relabel(texts, progress=False)
    assert all(r["predicted_label"] in [*c.SUPPORT_LABELS, c.UNCLEAR] for r in relabelled.rows)
    measured = c.agreement(relabelled)
    assert measured.rows == len(relabelled.rows)
    assert measured.rate == sum(r["label"] == r["predicted_label"] for r in relabelled.rows) / measured.rows
    assert int(measured.confusion.values.sum()) == measured.rows

    train, test = c.split(c.real_messages(), test_fraction=0.25)
    assert len(test) == 20 and not {r["text"] for r in train} & {r["text"] for r in test}
    classifier = c.train_classifier(train, output_dir=tmp_path / "clf", epochs=1)
    assert classifier.encoder == "smolsynth/tiny-encoder" and classifier.labels == sorted(c.SUPPORT_LABELS)
    assert any("loss" in entry for entry in classifier.log_history)
    evaluation = c.evaluate_classifier(classifier, test, name="real")
    assert len(evaluation.predictions) == 20 and set(evaluation.predictions) <= set(c.SUPPORT_LABELS)
    assert evaluation.accuracy == sum(p == r["label"] for p, r in zip(evaluation.predictions, test)) / 20
    from transformers import pipeline

    assert pipeline("text-classification", model=str(classifier.path))("where is my parcel")[0]["label"] in \
        c.SUPPORT_LABELS
    with pytest.raises(ValueError, match="not in labels="):
        c.train_classifier(train, labels=["billing"], output_dir=tmp_path / "bad")
