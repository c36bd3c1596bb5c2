"""A real browser: JupyterLab in headless Chromium runs a small notebook that shows a review panel
(smolsynth.review) over three hand-written rows, then clicks through it as a learner would: Accept row 1, Next,
Reject row 2, Next, edit row 3's text and Save edit, rate row 3, then types ``k a`` and Enter in the command box
(back to row 2, accept it) and ``r`` and Enter (reject it again, move on). After each action the review file the
panel saves (review.json in the lab's folder) must say so. Saves a screenshot to test-artifacts/browser-review.png.

Needs Debian's chromium (``apt-get install -y chromium``) and Python playwright; skips cleanly without them.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

import pytest
from lab_server import ARTIFACTS, CHROMIUM, CHROMIUM_FLAGS, jupyter_lab, needs_chromium, run_all_cells

NOTEBOOK = "review_panel.ipynb"
ROWS = [
    {"id": 1, "generation": "Tea is a drink made by pouring hot water over dried leaves.", "run_id": "run-a"},
    {"id": 2, "generation": "Tea is a kind of rock found in the mountains of Peru.", "run_id": "run-a"},
    {"id": 3, "generation": "Green tea is steemed, black tea is oxidised.", "run_id": "run-b"},
]
EDITED = "Green tea is steamed; black tea is oxidised before it is dried."
CODE = f"""from smolsynth.review import Review

rows = {ROWS!r}
review = Review(rows, path="review.json")
review.panel()"""

pytestmark = needs_chromium


def _notebook(path: Path) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_markdown_cell("# Review the generated rows"), nbformat.v4.new_code_cell(CODE)],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                  "language_info": {"name": "python"}})
    nbformat.write(nb, str(path))


@pytest.fixture()
def lab(tmp_path: Path):
    """JupyterLab on a free localhost port, serving a folder with the review notebook in it."""
    root, home = tmp_path / "work", tmp_path / "jupyter"
    root.mkdir()
    _notebook(root / NOTEBOOK)
    with jupyter_lab(root, home, tmp_path / "lab.log", notebook=NOTEBOOK) as served:
        yield served


def _wait_for_file(path: Path, check: Callable[[dict], bool], what: str, timeout: float = 20) -> dict:
    """The saved review once ``check`` holds for it (the kernel saves after the click's message arrives)."""
    deadline, data = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        try:
            data = json.loads(path.read_text())
            if check(data):
                return data
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.1)
    raise AssertionError(f"{path.name} does not show {what} after {timeout} s: {data}")


def test_review_panel_clicks_are_saved(lab: dict) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    pytest.importorskip("nbformat")
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "browser-review.png"
    saved = lab["root"] / "review.json"
    started = time.perf_counter()
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            run_all_cells(page, lab["url"])
            panel = page.locator(".jp-OutputArea-output .smolsynth-review-panel")
            try:
                panel.wait_for(state="visible", timeout=60_000)
            except sync_api.TimeoutError:
                page.screenshot(path=str(ARTIFACTS / "browser-review-timeout.png"))
                errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
                raise AssertionError(f"no review panel rendered; errors: {errors.all_inner_texts()}") from None
            info = panel.locator(".smolsynth-review-info")
            text = panel.locator(".smolsynth-review-text textarea")

            def on_row(row_id: int) -> None:
                info.filter(has_text=f"id {row_id} ").wait_for(timeout=15_000)

            on_row(1)
            assert text.input_value() == ROWS[0]["generation"]
            panel.locator(".smolsynth-review-accept").click()
            data = _wait_for_file(saved, lambda d: d["state"]["1"]["status"] == "accepted", "id 1 accepted")
            assert data["state"]["2"]["status"] == data["state"]["3"]["status"] == "pending"

            info.filter(has_text="status accepted").wait_for(timeout=15_000)  # the row stays until Next
            panel.locator(".smolsynth-review-next").click()
            on_row(2)
            panel.locator(".smolsynth-review-reject").click()
            data = _wait_for_file(saved, lambda d: d["state"]["2"]["status"] == "rejected", "id 2 rejected")
            assert data["state"]["1"]["status"] == "accepted"

            info.filter(has_text="status rejected").wait_for(timeout=15_000)
            panel.locator(".smolsynth-review-next").click()
            on_row(3)
            text.fill(EDITED)
            panel.locator(".smolsynth-review-save").click()
            data = _wait_for_file(saved, lambda d: d["state"]["3"]["edit"] == EDITED, "the edit of id 3")
            assert data["state"]["3"]["status"] == "pending" and data["counts"]["edited"] == 1

            panel.locator(".smolsynth-review-rating").get_by_role("button", name="5", exact=True).click()
            data = _wait_for_file(saved, lambda d: d["state"]["3"]["rating"] == 5, "id 3 rated 5")
            assert data["state"]["3"]["edit"] == EDITED
            assert data["counts"] == {"pending": 1, "accepted": 1, "rejected": 1, "rated": 1, "edited": 1}
            info.filter(has_text="rating 5").wait_for(timeout=15_000)
            assert text.input_value() == EDITED

            command = panel.locator(".smolsynth-review-command input")  # the keyboard: back to row 2, accept it
            command.fill("k a")
            command.press("Enter")
            data = _wait_for_file(saved, lambda d: d["state"]["2"]["status"] == "accepted", "id 2 accepted by keys")
            assert data["counts"]["accepted"] == 2 and data["state"]["3"]["rating"] == 5
            info.filter(has_text="id 2 ").filter(has_text="status accepted").wait_for(timeout=15_000)
            command.fill("r")  # one key: reject row 2 again, and move on to row 3
            command.press("Enter")
            data = _wait_for_file(saved, lambda d: d["state"]["2"]["status"] == "rejected", "id 2 rejected by keys")
            info.filter(has_text="id 3 ").filter(has_text="status pending").wait_for(timeout=15_000)
            assert data["counts"] == {"pending": 1, "accepted": 1, "rejected": 1, "rated": 1, "edited": 1}

            errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
            tracebacks = [t for t in errors.all_inner_texts() if "Traceback" in t or "Error" in t]
            panel.scroll_into_view_if_needed()
            page.screenshot(path=str(screenshot))
        finally:
            browser.close()
    seconds = time.perf_counter() - started
    print(f"browser review check: {seconds:.1f} s (screenshot: {screenshot})")
    assert not tracebacks, tracebacks
    assert screenshot.stat().st_size > 10_000
