"""Importing smolsynth (and distilabel through it) leaves the interpreter as it was."""

from __future__ import annotations

from conftest import run_python

CHECK = """
import logging, sys, warnings
root_handlers, root_level, hook = list(logging.getLogger().handlers), logging.getLogger().level, sys.excepthook
import smolsynth
print("IMPORT_OK", logging.getLogger().handlers == root_handlers, logging.getLogger().level == root_level,
      sys.excepthook is hook, "torch" in sys.modules, "distilabel" in sys.modules)
smolsynth.import_distilabel("distilabel.steps.tasks")
print("DISTILABEL_OK", logging.getLogger().handlers == root_handlers, sys.excepthook is hook)
"""


def test_import_changes_no_logger_no_excepthook_and_prints_nothing():
    result = run_python(CHECK)
    assert result.returncode == 0, result.stderr
    assert "IMPORT_OK True True True False False" in result.stdout
    assert "DISTILABEL_OK True True" in result.stdout
    assert "Warning" not in result.stderr, result.stderr


def test_user_settings_win_over_defaults():
    result = run_python("import os, smolsynth; print(os.environ['TRANSFORMERS_VERBOSITY'])",
                        env={"TRANSFORMERS_VERBOSITY": "info"})
    assert result.stdout.strip() == "info"


def test_set_verbosity_rejects_unknown_levels_with_the_fix():
    import pytest

    import smolsynth

    with pytest.raises(ValueError, match="set_verbosity"):
        smolsynth.set_verbosity("loud")
