"""The review state (smolsynth.review.Review) and its panel's handlers, in Python, no browser: every action, bulk
actions on several ids, both scales, bad input, saving and loading (and refusing other rows), the reviewed rows and
few-shot examples, the plain-text fallback, and the panel's buttons and command box driving the state."""

from __future__ import annotations

import doctest
import json

import pytest

import smolsynth.review
from smolsynth.review import Review, ReviewPanel
from smolsynth.rows import partition

ROWS = [
    {"id": 1, "generation": "Tea is a drink made from leaves.", "run_id": "run-a"},
    {"id": 2, "generation": "Tea is a kind of rock found in teh mountains.", "run_id": "run-a"},
    {"id": 3, "generation": "Green tea is steamed; black tea is oxidised.", "run_id": "run-b"},
    {"id": 4, "generation": "Teh best tea is brewed for three minutes.", "run_id": "run-b"},
]


def make(**kwargs) -> Review:
    return Review([dict(r) for r in ROWS], **kwargs)


def saved(path) -> dict:
    return json.loads(path.read_text())


# ------------------------------------------------------------------------------------------------- identity
def test_ids_come_from_the_id_column_or_the_index() -> None:
    assert make().ids == [1, 2, 3, 4] and make().identity == "id"
    no_ids = Review([{"generation": "a"}, {"generation": "b"}])
    assert no_ids.ids == [0, 1] and no_ids.identity == "index"
    repeated = Review([{"id": 1, "generation": "a"}, {"id": 1, "generation": "b"}])
    assert repeated.ids == [0, 1]
    assert Review([{"id": "x", "generation": "a"}]).ids == ["x"]
    review = make()
    review.accept("2")  # an id's string works too (as in the saved JSON)
    assert review.state(2)["status"] == "accepted"


def test_rows_from_a_dataset_and_a_result() -> None:
    datasets = pytest.importorskip("datasets")
    assert Review(datasets.Dataset.from_list(ROWS)).ids == [1, 2, 3, 4]
    result = partition(ROWS, lambda r: None if r["id"] != 4 else "dropped", step="keep")
    assert Review(result).ids == [1, 2, 3]


# ------------------------------------------------------------------------------------------------- actions
def test_accept_reject_reset_and_counts() -> None:
    review = make()
    assert review.counts() == {"pending": 4, "accepted": 0, "rejected": 0, "rated": 0, "edited": 0}
    review.accept(1)
    review.reject([2, 3])
    assert [review.state(i)["status"] for i in review.ids] == ["accepted", "rejected", "rejected", "pending"]
    assert review.counts() == {"pending": 1, "accepted": 1, "rejected": 2, "rated": 0, "edited": 0}
    review.rate(3, 2)
    review.edit(3, "Changed.")
    review.reset([1, 3])
    assert review.state(3) == {"status": "pending", "rating": None, "edit": None, "note": None}
    assert review.counts() == {"pending": 3, "accepted": 0, "rejected": 1, "rated": 0, "edited": 0}
    review.accept([])  # an empty selection does nothing
    assert review.counts()["accepted"] == 0


def test_bulk_actions_apply_to_every_id_given() -> None:
    review = make()
    review.accept({1, 3, 4})
    review.rate([1, 3], 5)
    assert review.filter(status="accepted") == [1, 3, 4]
    assert review.filter(rating=5) == [1, 3]
    assert review.fix([2, 4], "Teh", "The") == 1  # only 4 has "Teh" (2 has "teh")
    assert review.current_text(4) == "The best tea is brewed for three minutes."
    assert review.fix(review.ids, "teh", "the") == 1
    assert review.counts()["edited"] == 2


def test_rate_on_stars_and_invalid_ratings_name_value() -> None:
    review = make()
    review.rate(1, 4)
    assert review.state(1)["rating"] == 4
    for bad in (0, 6, 4.5, "5", "pass", True):
        with pytest.raises(ValueError, match="value="):
            review.rate(1, bad)
    assert review.state(1)["rating"] == 4  # nothing changed
    review.rate(1, None)
    assert review.state(1)["rating"] is None


def test_pass_fail_scale() -> None:
    review = make(scale="pass_fail")
    review.rate([1, 2], "pass")
    review.rate(3, "fail")
    review.accept([1, 3])
    with pytest.raises(ValueError, match="value=3"):
        review.rate(1, 3)
    assert review.filter(min_rating="pass") == [1, 2]
    assert review.filter(min_rating="fail") == [1, 2, 3]
    assert [r["id"] for r in review.few_shot()] == [1]
    with pytest.raises(ValueError, match="min_rating"):
        review.filter(min_rating=4)


def test_unknown_ids_are_refused_before_anything_changes() -> None:
    review = make()
    with pytest.raises(ValueError, match=r"ids=9 is not a row.*the ids are 1, 2, 3, 4"):
        review.accept([1, 9])
    assert review.state(1)["status"] == "pending"
    with pytest.raises(ValueError, match="id=0"):
        review.edit(0, "x")
    with pytest.raises(ValueError, match="is not a row"):
        review.rate(99, 3)


def test_edit_one_row_and_fix() -> None:
    review = make()
    review.edit(2, "Tea is not a rock.")
    assert review.state(2)["edit"] == "Tea is not a rock." and review.current_text(2) == "Tea is not a rock."
    review.edit(2, ROWS[1]["generation"])  # back to the original: no edit
    assert review.state(2)["edit"] is None
    with pytest.raises(ValueError, match="text=''"):
        review.edit(2, "")
    with pytest.raises(TypeError, match="one row"):
        review.edit([1, 2], "x")
    with pytest.raises(ValueError, match="old=''"):
        review.fix([1], "", "x")
    assert review.fix([1, 2, 3], "missing", "x") == 0
    review.edit(4, "tea")
    with pytest.raises(ValueError, match="no text"):  # would empty row 4: refused, and row 3 is not changed either
        review.fix([3, 4], "tea", "")
    assert review.state(3)["edit"] is None and review.current_text(4) == "tea"
    assert review.row(2) == ROWS[1]  # the rows themselves never change


def test_filter_by_status_rating_and_run() -> None:
    review = make()
    review.accept([1, 3])
    review.rate(1, 5)
    review.rate(3, 3)
    review.rate(4, 4)
    assert review.filter(status="pending") == [2, 4]
    assert review.filter(min_rating=4) == [1, 4]
    assert review.filter(min_rating=3.5, status="accepted") == [1]
    assert review.filter(rating=3) == [3]
    assert review.filter(run="run-b") == [3, 4]
    assert review.filter(run="run-b", status="accepted") == [3]
    assert review.runs == ["run-a", "run-b"]
    with pytest.raises(ValueError, match="run='run-c'.*'run-a', 'run-b'"):
        review.filter(run="run-c")
    with pytest.raises(ValueError, match="status='done'"):
        review.filter(status="done")


# ------------------------------------------------------------------------------------------------- outputs
def test_reviewed_applies_edits_and_keeps_the_original() -> None:
    review = make()
    review.accept([1, 2])
    review.reject(3)
    review.edit(2, "Tea is a drink, not a rock.")
    review.rate(1, 5)
    review.note(2, "fixed the fact")
    out = review.reviewed()
    assert [r["id"] for r in out] == [1, 2]
    assert out[0] == {**ROWS[0], "review_status": "accepted", "rating": 5}
    assert out[1]["generation"] == "Tea is a drink, not a rock."
    assert out[1]["original_generation"] == ROWS[1]["generation"]
    assert out[1]["review_note"] == "fixed the fact" and out[1]["rating"] is None
    assert [r["id"] for r in review.reviewed(status="rejected")] == [3]
    assert len(review.reviewed(status=None)) == 4
    assert [r["id"] for r in review.reviewed(min_rating=4)] == [1]


def test_few_shot_returns_only_accepted_high_rated_rows_in_order() -> None:
    review = make()
    review.accept([1, 2, 3])
    review.rate([4], 5)  # rated 5 but not accepted
    review.rate(3, 5)
    review.rate(1, 4)
    review.rate(2, 3)  # accepted but rated too low
    review.edit(3, "Green tea is steamed.")
    shots = review.few_shot()
    assert [r["id"] for r in shots] == [1, 3]
    assert shots[1]["generation"] == "Green tea is steamed."
    assert [r["id"] for r in review.few_shot(1)] == [1]
    assert [r["id"] for r in review.few_shot(min_rating=5)] == [3]
    with pytest.raises(ValueError, match="k=0"):
        review.few_shot(0)


def test_text_fallback_shows_statuses_ratings_and_edits() -> None:
    review = make()
    review.accept(1)
    review.reject(2)
    review.rate(1, 5)
    review.edit(3, "x" * 100)
    text = review.text()
    lines = text.splitlines()
    assert "1 accepted, 1 rejected, 2 pending; 1 rated, 1 edited" in lines[0]
    assert lines[1].split() == ["id", "status", "rating", "text"]
    assert lines[2].split()[:3] == ["1", "accepted", "5"]
    assert lines[3].split()[:3] == ["2", "rejected", "-"]
    assert "* " + "x" * 69 + "…" in lines[4] and "x" * 71 not in text
    assert str(review) == text
    short = review.text(limit=2)
    assert len(short.splitlines()) == 5 and "2 more rows" in short
    assert "accepted" in review._repr_html_()


# ------------------------------------------------------------------------------------------------- files
def test_save_and_load_round_trip(tmp_path) -> None:
    review = make(scale="pass_fail")
    review.accept(1)
    review.rate(1, "pass")
    review.edit(2, "Edited.")
    review.note(2, "check")
    file = review.save(tmp_path / "sub" / "review.json")
    data = saved(file)
    assert data["column"] == "generation" and data["scale"] == "pass_fail" and data["rows"] == 4
    assert data["state"]["1"] == {"status": "accepted", "rating": "pass", "edit": None, "note": None}
    assert data["state"]["2"]["edit"] == "Edited."
    assert list(tmp_path.joinpath("sub").iterdir()) == [file]  # no temporary file left
    again = Review.load([dict(r) for r in ROWS], file)
    assert again.scale == "pass_fail" and again.path == file
    assert [again.state(i) for i in again.ids] == [review.state(i) for i in review.ids]
    again.reject(4)  # a loaded review saves where it came from
    assert saved(file)["state"]["4"]["status"] == "rejected"
    with pytest.raises(ValueError, match="save\\(\\) needs a path"):
        make().save()
    with pytest.raises(FileNotFoundError, match="no such file"):
        Review.load(ROWS, tmp_path / "missing.json")


def test_every_action_autosaves(tmp_path) -> None:
    file = tmp_path / "review.json"
    review = make(path=file)
    assert not file.exists()  # nothing written before the first action
    review.accept(1)
    assert saved(file)["state"]["1"]["status"] == "accepted"
    review.reject([2, 3])
    assert [saved(file)["state"][k]["status"] for k in "23"] == ["rejected", "rejected"]
    review.rate(3, 4)
    assert saved(file)["state"]["3"]["rating"] == 4
    review.edit(4, "New text.")
    assert saved(file)["state"]["4"]["edit"] == "New text."
    review.fix([1], "leaves", "tea leaves")
    assert saved(file)["state"]["1"]["edit"] == "Tea is a drink made from tea leaves."
    review.reset(1)
    assert saved(file)["state"]["1"] == {"status": "pending", "rating": None, "edit": None, "note": None}
    assert saved(file)["counts"] == review.counts()
    # a new Review on the same rows and path carries on where this one stopped
    assert Review([dict(r) for r in ROWS], path=file).state(4)["edit"] == "New text."


def test_loading_against_other_rows_column_or_scale_is_refused(tmp_path) -> None:
    file = tmp_path / "review.json"
    make(path=file).accept(1)
    other = [dict(r) for r in ROWS]
    other[2]["generation"] = "Something else."
    with pytest.raises(ValueError, match="review of other rows"):
        Review(other, path=file)
    with pytest.raises(ValueError, match="review of other rows"):
        Review.load(ROWS[:3], file)
    with pytest.raises(ValueError, match="scale='stars'"):
        make(path=file, scale="pass_fail")
    file.write_text("{not json")
    with pytest.raises(ValueError, match="not a saved review"):
        make(path=file)


# ------------------------------------------------------------------------------------------------- bad input
def test_bad_arguments_name_the_argument_and_the_fix() -> None:
    with pytest.raises(ValueError, match=r"column='text' is not a column.*\['generation', 'id', 'run_id'\]"):
        make(column="text")
    with pytest.raises(ValueError, match="scale='likert'"):
        make(scale="likert")
    with pytest.raises(ValueError, match="rows is empty"):
        Review([])
    with pytest.raises(TypeError, match="rows=None"):
        Review(None)
    with pytest.raises(TypeError, match="path=3"):
        make(path=3)
    with pytest.raises(ValueError, match="Review\\(\\) reads the rows' 'generation' texts"):
        Review([{"generation": None}])
    with pytest.raises(ValueError, match="limit=0"):
        make().text(0)


# ------------------------------------------------------------------------------------------------- panel
def test_panel_buttons_drive_the_state(tmp_path) -> None:
    pytest.importorskip("ipywidgets")
    file = tmp_path / "review.json"
    review = make(path=file)
    panel = review.panel()
    assert isinstance(panel, ReviewPanel) and panel.current == 1
    assert panel.text_area.value == ROWS[0]["generation"] and "id 1" in panel.info.value
    panel.accept_button.click()
    assert review.state(1)["status"] == "accepted" and panel.current == 1  # the row stays until Next
    assert saved(file)["state"]["1"]["status"] == "accepted" and "accepted" in panel.info.value
    panel.next_button.click()
    panel.reject_button.click()
    assert review.state(2)["status"] == "rejected" and panel.current == 2
    panel.next_button.click()
    panel.text_area.value = "Green tea is steamed."
    panel.save_button.click()
    assert review.state(3)["edit"] == "Green tea is steamed." and panel.current == 3
    panel.rating_buttons.value = 5
    assert review.state(3)["rating"] == 5 and saved(file)["state"]["3"]["rating"] == 5
    panel.previous_button.click()
    assert panel.current == 2 and panel.rating_buttons.value is None
    panel.next_button.click()
    panel.next_button.click()
    panel.next_button.click()  # stops at the last row
    assert panel.current == 4 and panel.next_button.disabled
    panel.text_area.value = ""
    panel.save_button.click()  # an empty edit is refused, said in the panel, not raised
    assert review.state(4)["edit"] is None and "is empty" in panel.message.value


def test_panel_selection_filter_fix_and_commands() -> None:
    pytest.importorskip("ipywidgets")
    review = make()
    panel = review.panel()
    panel.select_box.value = True  # select 1
    panel.next_button.click()
    panel.next_button.click()
    panel.select_box.value = True  # select 3
    assert panel.selected == [1, 3]
    panel.apply_selected.value = True
    panel.accept_button.click()
    assert review.filter(status="accepted") == [1, 3]
    panel.rating_buttons.value = 4
    assert review.filter(rating=4) == [1, 3]
    panel.find_text.value, panel.replace_text.value = "tea ", "TEA "
    panel.fix_button.click()
    assert review.current_text(3) == "Green TEA is steamed; black TEA is oxidised."
    assert review.counts()["edited"] == 1  # row 1 has "Tea ", not "tea "
    panel.clear_selection_button.click()
    assert panel.targets() == [panel.current]

    panel.filter_dropdown.value = "pending"
    assert panel.current == 2
    panel.run_command("r")
    assert review.state(2)["status"] == "rejected" and panel.current == 4  # the next pending row
    panel.command.value = "a5"  # as typed in the box, then Enter
    assert review.state(4) == {"status": "accepted", "rating": 5, "edit": None, "note": None}
    assert panel.command.value == "" and panel.current is None  # no pending row left
    assert "No row matches" in panel.info.value and panel.accept_button.disabled
    panel.filter_dropdown.value = "run:run-b"
    assert panel.current == 3
    panel.run_command("z")
    assert "unknown key" in panel.message.value and review.state(3)["status"] == "accepted"
    panel.filter_dropdown.value = "all"
    panel.run_command("nnk")
    assert panel.current == 2
    panel.run_command("2")
    assert review.state(2)["rating"] == 2 and panel.current == 3
    panel.filter_dropdown.value = "rated"
    assert [panel.current] == [1] and panel._visible == [1, 3, 4]


def test_panel_with_advance_moves_on_after_accept_and_reject() -> None:
    pytest.importorskip("ipywidgets")
    review = make()
    panel = review.panel(advance=True)
    panel.accept_button.click()
    assert review.state(1)["status"] == "accepted" and panel.current == 2
    panel.reject_button.click()
    assert review.state(2)["status"] == "rejected" and panel.current == 3
    panel.rating_buttons.value = 3  # rating stays on the row
    assert review.state(3)["rating"] == 3 and panel.current == 3


def test_panel_pass_fail_commands_and_display() -> None:
    pytest.importorskip("ipywidgets")
    review = make(scale="pass_fail")
    panel = review.panel()
    assert [o[1] for o in panel.rating_buttons.options] == ["pass", "fail"]
    panel.run_command("p")
    panel.run_command("f")
    assert review.state(1)["rating"] == "pass" and review.state(2)["rating"] == "fail"
    panel.run_command("3")
    assert "unknown key" in panel.message.value
    classes = {c for widget in (panel.accept_button, panel.reject_button, panel.save_button, panel.next_button,
                                panel.previous_button, panel.rating_buttons, panel.text_area, panel.command,
                                panel.filter_dropdown, panel.select_box, panel.widget) for c in widget._dom_classes}
    assert {"smolsynth-review-accept", "smolsynth-review-reject", "smolsynth-review-save", "smolsynth-review-next",
            "smolsynth-review-previous", "smolsynth-review-rating", "smolsynth-review-text",
            "smolsynth-review-command", "smolsynth-review-filter", "smolsynth-review-select",
            "smolsynth-review-panel"} <= classes
    assert "text/plain" in panel.widget._repr_mimebundle_()


def test_panel_without_ipywidgets_points_to_text(monkeypatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_widgets(name, *args, **kwargs):
        if name == "ipywidgets":
            raise ImportError("no ipywidgets")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_widgets)
    with pytest.raises(ImportError, match=r"review\.text\(\)"):
        make().panel()


def test_doctests() -> None:
    result = doctest.testmod(smolsynth.review, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 20
