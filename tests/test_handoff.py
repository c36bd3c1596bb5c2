"""The hand-off between notebooks (smolsynth.handoff, smolsynth.course.data_path): load what an earlier notebook
saved, or make a small substitute with the real package calls on the tiny model, and say which happened."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import make_chats, make_pairs
from smolsynth import course, handoff


def test_data_path_lives_under_smolsynth_home_and_rejects_typos(engine_home: Path) -> None:
    assert course.data_path("sft") == engine_home / "course" / "sft"
    assert course.data_path("sft-model").name == "sft-model"
    with pytest.raises(ValueError, match="unknown name.*'sft', 'dpo'"):
        course.data_path("stf")


def test_sft_data_loads_what_notebook_01_saved(engine_home: Path) -> None:
    make_chats(10).save_to_disk(str(course.data_path("sft")))
    data = handoff.sft_data(rows=6, model="smolsynth/tiny", progress=False)
    assert data.source == "saved" and len(data) == 6 and data.reports == []
    assert data.dataset[0]["messages"] == make_chats(1)[0]["messages"]
    assert "Loaded" in data.note and "6 of its 10 rows" in data.note


def test_sft_data_is_made_on_the_spot_when_nothing_usable_is_saved(engine_home: Path) -> None:
    data = handoff.sft_data(rows=3, min_rows=1, model="smolsynth/tiny", max_new_tokens=8, progress=False)
    assert data.source == "made" and "nothing saved there yet" in data.note
    assert data.dataset.column_names == ["messages"]
    users = [row["messages"][0]["content"] for row in data.dataset]
    assert set(users) <= set(handoff.SAMPLE_INSTRUCTIONS[:3])
    generated, converted = data.reports
    assert generated.rows_in == 3 and converted.rows_out == len(data) == 3 - converted.dropped_total

    make_chats(2).save_to_disk(str(course.data_path("sft")))  # too few rows: made again, and the note says why
    assert "fewer than the 3" in handoff.sft_data(rows=3, min_rows=3, model="smolsynth/tiny", max_new_tokens=8,
                                                  progress=False).note
    shutil.rmtree(course.data_path("sft"))
    make_pairs(6).save_to_disk(str(course.data_path("sft")))  # not SFT data
    assert "not in the expected format" in handoff.sft_data(rows=3, min_rows=1, model="smolsynth/tiny",
                                                            max_new_tokens=8, progress=False).note


def test_preference_pairs_load_saved_ones(engine_home: Path) -> None:
    make_pairs(8).save_to_disk(str(course.data_path("dpo")))
    pairs = handoff.preference_pairs(rows=5, model="smolsynth/tiny", progress=False)
    assert pairs.source == "saved" and len(pairs) == 5 and "5 of its 8 pairs" in pairs.note


def test_preference_pairs_are_made_with_a_real_judge_and_every_drop_counted(engine_home: Path) -> None:
    from smolsynth.formats import validate_dpo_dataset
    from smolsynth.preferences import DEFAULT_RULE

    pairs = handoff.preference_pairs(rows=4, model="smolsynth/tiny", max_new_tokens=8, rationale_chars=20,
                                     progress=False)
    assert pairs.source == "made" and "No usable preference pairs" in pairs.note
    assert [r.step for r in pairs.reports] == [
        "answers: smolsynth/tiny (concise)", "answers: smolsynth/tiny (precise)", "pool_responses (2 generators)",
        "judge (overall-rating)", f"binarize ({DEFAULT_RULE})"]
    judge, binarized = pairs.reports[3], pairs.reports[4]
    assert judge.rows_in == 4 and judge.rows_out + judge.dropped_total == 4  # constrained: every judgment parses
    assert binarized.rows_in == judge.rows_out and binarized.rows_out + binarized.dropped_total == binarized.rows_in
    assert len(pairs) == binarized.rows_out >= 2
    assert len(validate_dpo_dataset(pairs.dataset).rows) == len(pairs)
    with pytest.raises(ValueError, match="could be made on the spot.*fewer than min_rows=5.*ask for more rows"):  # the same rows, from the cache
        handoff.preference_pairs(rows=4, min_rows=5, model="smolsynth/tiny", max_new_tokens=8, rationale_chars=20,
                                 progress=False)


def test_sft_checkpoint_reuses_notebook_03s_and_trains_when_it_is_missing(trained_sft, trained_dpo,
                                                                         tmp_path: Path) -> None:
    saved = handoff.sft_checkpoint(path=trained_sft.output_dir, model="smolsynth/tiny")
    assert saved.source == "saved" and saved.path == trained_sft.output_dir and saved.result is None

    not_sft = tmp_path / "ckpt"
    shutil.copytree(trained_dpo.output_dir, not_sft)  # a DPO run where an SFT one is expected: train a quick SFT
    quick = handoff.sft_checkpoint(make_pairs(8), path=not_sft, model="smolsynth/tiny", max_steps=1)
    assert quick.source == "trained" and "holds a 'dpo' run" in quick.note and "chosen answers" in quick.note
    assert quick.result.metrics["train_rows"] + quick.result.metrics["eval_rows"] == 8
    assert handoff.sft_checkpoint(path=not_sft, model="smolsynth/tiny").source == "saved"  # now it is one

    with pytest.raises(ValueError, match="no data= to train one"):
        handoff.sft_checkpoint(path=tmp_path / "missing", model="smolsynth/tiny")
