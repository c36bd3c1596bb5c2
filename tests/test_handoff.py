"""The hand-off between notebooks (smolsynth.handoff, smolsynth.course.data_path): load what an earlier notebook
saved, or make a small substitute with the real package calls on the tiny model, and say which happened; the record
of the model that made a hand-off, and refusing another model's; the sources (course folder, a Hub repository's
layout, a .zip from export, a plain file); Colab's helpers outside Colab; the container's memory limit."""

from __future__ import annotations

import json
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
    handoff.save(make_chats(10), "sft", model="smolsynth/tiny")
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
    handoff.save(make_pairs(8), "dpo", model="smolsynth/tiny")
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
    pooled, judge, binarized = pairs.reports[2], pairs.reports[3], pairs.reports[4]
    # a tiny-model answer may be cut off at 8 tokens (then its row has one candidate and leaves the pool, counted)
    assert pooled.rows_in == 4 and pooled.rows_out + pooled.dropped_total == 4
    assert judge.rows_in == pooled.rows_out and judge.dropped_total == 0  # constrained: every judgment parses
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


# ------------------------------------------------------------------------------------ records, sources, refusals
TINY = "smolsynth/tiny"
QUICK = {"model": TINY, "max_new_tokens": 8, "progress": False}


def _record(folder: Path) -> dict:
    return json.loads((folder / handoff.RECORD_FILE).read_text(encoding="utf-8"))


def test_save_writes_the_record_and_the_course_folder_is_used_naming_its_model(engine_home: Path,
                                                                                monkeypatch) -> None:
    import smolsynth

    monkeypatch.setenv("SMOLSYNTH_FAST", "1")
    folder = handoff.save(make_chats(6), "sft", model=TINY, settings={"max_new_tokens": 8})
    assert folder == course.data_path("sft") and (folder / "state.json").is_file()
    record = _record(folder)
    assert record["name"] == "sft" and record["model"] == TINY and record["rows"] == 6
    assert record["settings"] == {"fast": True, "max_new_tokens": 8}
    assert record["smolsynth_version"] == smolsynth.__version__ and record["created_utc"].endswith("+00:00")

    data = handoff.sft_data(rows=4, **QUICK)
    assert data.source == "saved" and data.origin == "folder" and data.model == TINY and len(data) == 4
    assert f"from the folder {folder}" in data.note and "made by smolsynth/tiny in fast mode" in data.note
    explicit = handoff.sft_data(source=folder, **QUICK)  # the same folder, named as a source
    assert explicit.source == "saved" and len(explicit) == 6

    monkeypatch.delenv("SMOLSYNTH_FAST")  # saved again: replaced whole, no temporary folder left behind
    handoff.save(explicit, "sft", model=TINY)
    assert _record(folder)["settings"] == {"fast": False} and len(handoff.sft_data(**QUICK)) == 6
    assert sorted(p.name for p in folder.parent.iterdir()) == ["sft"]


def test_a_folder_laid_out_like_a_hub_repository_loads_through_source(tmp_path: Path, engine_home: Path) -> None:
    repo = tmp_path / "my-dpo-pairs"
    (repo / "data").mkdir(parents=True)
    make_pairs(5).to_parquet(str(repo / "data" / "train-00000-of-00001.parquet"))
    (repo / "README.md").write_text("---\nlicense: apache-2.0\nconfigs:\n- config_name: default\n  data_files:\n"
                                    "  - split: train\n    path: data/train-*\n---\n# Preference pairs\n")
    (repo / handoff.RECORD_FILE).write_text(json.dumps({"name": "dpo", "model": TINY, "rows": 5,
                                                        "settings": {"fast": False}}))
    pairs = handoff.preference_pairs(source=str(repo), rows=4, **QUICK)
    assert pairs.source == "saved" and pairs.origin == "folder" and len(pairs) == 4 and pairs.model == TINY
    assert pairs.dataset[0]["chosen"] == make_pairs(1)[0]["chosen"]
    assert f"from the folder {repo}" in pairs.note and "made by smolsynth/tiny in a full run" in pairs.note


def test_a_hub_id_that_cannot_be_loaded_names_the_source_and_the_fix(engine_home: Path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # no network call: the Hub counts as unreachable
    with pytest.raises(ValueError, match=r"source='nobody/no-such-dataset'.*Hub dataset repository.*log in"):
        handoff.sft_data(source="nobody/no-such-dataset", **QUICK)


def test_an_upload_a_zip_from_export_and_a_plain_jsonl_file(engine_home: Path, tmp_path: Path) -> None:
    handoff.save(make_pairs(6), "dpo", model=TINY)
    archive = handoff.export("dpo")
    assert archive == course.data_path("dpo").with_name("dpo.zip") and archive.is_file()
    upload = shutil.copy(archive, tmp_path / "from-my-laptop.zip")
    shutil.rmtree(course.data_path("dpo"))  # a fresh runtime: nothing saved here
    pairs = handoff.preference_pairs(source=upload, **QUICK)
    assert pairs.source == "saved" and pairs.origin == "upload" and len(pairs) == 6 and pairs.model == TINY
    assert f"from the uploaded file {upload}" in pairs.note and "made by smolsynth/tiny" in pairs.note
    assert handoff.preference_pairs(source=upload, **QUICK).dataset["prompt"] == pairs.dataset["prompt"]  # unpacked once

    plain = tmp_path / "chats.jsonl"
    make_chats(5).to_json(str(plain))
    data = handoff.sft_data(source=plain, min_rows=5, **QUICK)
    assert data.source == "saved" and data.origin == "upload" and len(data) == 5 and data.model is None
    assert data.dataset[1]["messages"] == make_chats(2)[1]["messages"]
    assert "could not be checked (a plain .jsonl file carries no smolsynth_handoff.json record)" in data.note


def test_another_models_hand_off_is_refused_unless_allowed(engine_home: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("SMOLSYNTH_FAST", "1")
    folder = handoff.save(make_chats(6), "sft", model="someone/teacher-model")
    monkeypatch.delenv("SMOLSYNTH_FAST")
    made = handoff.sft_data(rows=3, min_rows=1, **QUICK)  # from the course folder: refused, made on the spot
    assert made.source == "made" and made.origin == "made" and made.model == TINY
    assert (f"Refused the SFT dataset of notebook 01 from the folder {folder}: it was made by someone/teacher-model "
            "in fast mode, not by smolsynth/tiny") in made.note
    assert "re-run notebook 01 with SMOLSYNTH_MODEL=smolsynth/tiny" in made.note
    assert "allow_other_model=True" in made.note and "on the spot: smolsynth/tiny answered" in made.note
    users = {row["messages"][0]["content"] for row in made.dataset}
    assert users <= set(handoff.SAMPLE_INSTRUCTIONS[:3])  # not the saved rows

    with pytest.raises(ValueError, match=r"Refused.*made by someone/teacher-model in fast mode.*"
                                         r"SMOLSYNTH_MODEL=smolsynth/tiny.*allow_other_model=True"):
        handoff.sft_data(source=folder, **QUICK)
    allowed = handoff.sft_data(source=folder, allow_other_model=True, **QUICK)
    assert allowed.source == "saved" and len(allowed) == 6 and allowed.model == "someone/teacher-model"
    assert "not by smolsynth/tiny: used anyway (allow_other_model=True)" in allowed.note
    assert handoff.sft_data(allow_other_model=True, **QUICK).source == "saved"  # the course folder, allowed too

    bare = tmp_path / "no-record"  # a save_to_disk folder without a record: the model cannot be checked
    make_chats(6).save_to_disk(str(bare))
    with pytest.raises(ValueError, match="has no smolsynth_handoff.json record.*SMOLSYNTH_MODEL=smolsynth/tiny"):
        handoff.sft_data(source=bare, **QUICK)
    assert "could not be checked" in handoff.sft_data(source=bare, allow_other_model=True, **QUICK).note
    shutil.rmtree(folder)
    shutil.copytree(bare, folder)
    refused = handoff.sft_data(rows=3, min_rows=1, **QUICK)  # the same rows as above, from the cache
    assert refused.source == "made" and "Refused" in refused.note and "has no smolsynth_handoff.json" in refused.note


def test_bad_sources_and_arguments_fail_at_the_door_naming_them(engine_home: Path, tmp_path: Path) -> None:
    import smolsynth.models

    smolsynth.models.clear_model_cache()
    with pytest.raises(ValueError, match=r"source='.*missing\.zip': there is no such file.*handoff\.export"):
        handoff.sft_data(source=str(tmp_path / "missing.zip"), **QUICK)
    (tmp_path / "pairs.csv").write_text("prompt,chosen,rejected\n")
    with pytest.raises(ValueError, match=r"source=.*a \.csv file is not a source smolsynth reads.*\.jsonl"):
        handoff.preference_pairs(source=tmp_path / "pairs.csv", **QUICK)
    with pytest.raises(TypeError, match="source is a int"):
        handoff.sft_data(source=3, **QUICK)
    with pytest.raises(ValueError, match="source=.*path=.*pass one"):
        handoff.sft_data(source=tmp_path, path=tmp_path, **QUICK)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="source=.*cannot be used: it holds neither a saved dataset"):
        handoff.sft_data(source=tmp_path / "empty", **QUICK)
    (tmp_path / "broken.zip").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="source=.*cannot be used: it is not a readable .zip file"):
        handoff.sft_data(source=tmp_path / "broken.zip", **QUICK)
    with pytest.raises(ValueError, match="source=.*cannot be used: it is not in the expected format"):
        plain = tmp_path / "pairs.jsonl"
        make_pairs(3).to_json(str(plain))
        handoff.sft_data(source=plain, **QUICK)  # pairs where SFT data is expected
    with pytest.raises(TypeError, match="data is a list"):
        handoff.save([{"messages": []}], "sft", model=TINY)
    with pytest.raises(ValueError, match="name='sft-model' is not one of 'sft', 'dpo'"):
        handoff.save(make_chats(2), "sft-model", model=TINY)
    with pytest.raises(TypeError, match="settings holds a value"):
        handoff.save(make_chats(2), "sft", model=TINY, settings={"path": Path("x")})
    with pytest.raises(ValueError, match=r"export\('dpo'\): nothing saved by handoff.save.*notebook 02"):
        handoff.export("dpo")
    with pytest.raises(ValueError, match="repo_id='no-slash' is not a Hub repository id"):
        handoff.publish("sft", "no-slash")
    assert not course.data_path("sft").exists() and len(smolsynth.models._LOADED) == 0


def test_publish_refuses_before_uploading_when_not_logged_in(engine_home: Path, monkeypatch) -> None:
    from huggingface_hub import get_token

    monkeypatch.delenv("HF_TOKEN", raising=False)
    if get_token() is not None:
        pytest.skip("this machine is logged in to the Hugging Face Hub")
    handoff.save(make_chats(2), "sft", model=TINY)
    with pytest.raises(RuntimeError, match="not logged in.*nothing was uploaded.*login"):
        handoff.publish("sft", "nobody/my-sft-data")


def test_colab_helpers_outside_colab_and_the_course_home_setting(engine_home: Path, tmp_path: Path,
                                                                 monkeypatch) -> None:
    with pytest.raises(RuntimeError, match="use_drive.. is for Google Colab.*already persist"):
        course.use_drive()
    with pytest.raises(RuntimeError, match=r"upload.. is for Google Colab.*pass the file's path as source="):
        handoff.upload("sft")
    drive = tmp_path / "MyDrive" / "smolsynth" / "course"
    monkeypatch.setenv("SMOLSYNTH_COURSE_HOME", str(drive))
    assert course.data_path("sft") == drive / "sft" and course.data_path("uploads") == drive / "uploads"
    assert handoff.save(make_chats(4), "sft", model=TINY) == drive / "sft"
    assert handoff.sft_data(**QUICK).path == drive / "sft"
    assert not (engine_home / "course").exists()  # the model cache stays in SMOLSYNTH_HOME; the hand-offs moved


def test_ram_is_the_smaller_of_the_host_and_the_cgroup_limit(tmp_path: Path) -> None:
    from smolsynth.hardware import _ram_gb

    host = _ram_gb(tmp_path / "no-cgroup")
    assert host is not None and host > 1
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "memory.max").write_text(f"{2**30}\n")  # Binder: 1 GiB for the container
    assert _ram_gb(v2) == 1.0
    (v2 / "memory.max").write_text("max\n")
    assert _ram_gb(v2) == host
    (v2 / "memory.max").write_text(f"{2**30 * 10**6}\n")  # a limit above the host's RAM
    assert _ram_gb(v2) == host
    v1 = tmp_path / "v1"
    (v1 / "memory").mkdir(parents=True)
    (v1 / "memory" / "memory.limit_in_bytes").write_text(f"{3 * 2**29}\n")
    assert _ram_gb(v1) == 1.5
    (v1 / "memory" / "memory.limit_in_bytes").write_text("9223372036854771712\n")  # v1's "no limit"
    assert _ram_gb(v1) == host
