"""A real browser: JupyterLab in headless Chromium opens the solution notebook 00, runs all cells, and shows the
exercise feedback, rendered, with no error. Saves a screenshot to test-artifacts/browser-00_setup.png.

Needs Debian's chromium (``apt-get install -y chromium``) and Python playwright; skips cleanly without them.
Run it alone with ``pytest tests/test_browser.py`` (CI: ``make browser-test``).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from lab_server import ARTIFACTS, CHROMIUM, CHROMIUM_FLAGS, REPO, jupyter_lab, needs_chromium, run_all_cells

NOTEBOOK = REPO / "notebooks" / "solutions" / "00_setup.ipynb"
RUN_TIMEOUT_S = 240

pytestmark = needs_chromium


@pytest.fixture()
def lab(tmp_path: Path, engine_home: Path):
    """JupyterLab on a free localhost port, serving a copy of notebook 00 (the repository stays untouched)."""
    root, home = tmp_path / "work", tmp_path / "jupyter"
    root.mkdir()
    shutil.copy(NOTEBOOK, root / NOTEBOOK.name)
    with jupyter_lab(root, home, tmp_path / "lab.log", notebook=NOTEBOOK.name) as served:
        yield served


def test_notebook_00_runs_in_jupyterlab_and_shows_feedback(lab: dict) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "browser-00_setup.png"
    started = time.perf_counter()
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            run_all_cells(page, lab["url"])
            code_cells = page.locator(".jp-Notebook .jp-CodeCell").count()
            # done when every code cell shows an execution number, or when an error stopped the run
            try:
                page.wait_for_function(
                    """n => {
                        const prompts = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt')];
                        const failed = document.querySelector(".jp-OutputArea-output[data-mime-type="
                                                              + "'application/vnd.jupyter.stderr']") !== null;
                        const done = prompts.length === n && prompts.every(p => /\\[\\d+\\]/.test(p.textContent));
                        return done || (failed && !prompts.some(p => p.textContent.includes('*')));
                    }""", arg=code_cells, timeout=RUN_TIMEOUT_S * 1000)
            except sync_api.TimeoutError:
                page.screenshot(path=str(ARTIFACTS / "browser-00_setup-timeout.png"))
                raise
            errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
            tracebacks = [t for t in errors.all_inner_texts() if "Traceback" in t or "Error" in t]
            feedback = page.locator(".jp-OutputArea-output .smolsynth-feedback")
            statuses = [feedback.nth(i).get_attribute("data-status") for i in range(feedback.count())]
            target = feedback.last if statuses else (errors.first if tracebacks else None)
            if target is not None:
                target.scroll_into_view_if_needed()
                page.wait_for_timeout(300)
            page.screenshot(path=str(screenshot))
            visible = bool(statuses) and feedback.last.is_visible()
        finally:
            browser.close()
    seconds = time.perf_counter() - started
    print(f"browser check: {seconds:.1f} s (screenshot: {screenshot})")
    assert not tracebacks, tracebacks
    assert statuses == ["correct", "correct"], statuses
    assert visible and screenshot.stat().st_size > 10_000
