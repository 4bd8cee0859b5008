"""gpt2lib.notebook.glue: MyST-NB's glue where it is installed, nothing where it is not (Colab)."""
from __future__ import annotations

import sys
import types

from gpt2lib.notebook import glue


def test_glue_hands_the_value_to_myst_nb(monkeypatch):
    calls = []
    fake = types.ModuleType("myst_nb")
    fake.glue = lambda name, value, display=True: calls.append((name, value, display))
    monkeypatch.setitem(sys.modules, "myst_nb", fake)
    glue("q_count", 408, display=False)
    assert calls == [("q_count", 408, False)]


def test_glue_without_myst_nb_does_nothing(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "myst_nb", None)  # import fails, as on Colab
    assert glue("q_count", 408) is None
    assert capsys.readouterr().out == ""


def test_glued_keeps_the_text_of_every_value_without_myst_nb(monkeypatch):
    import sys

    from IPython.display import Markdown

    from gpt2lib.notebook import glued

    monkeypatch.setitem(sys.modules, "myst_nb", None)   # as on Colab: importing it fails
    glue("verdict", "no head is an induction head", display=False)
    glue("count", 408)
    glue("block", Markdown("- It **can** continue text"), display=False)
    assert {k: glued()[k] for k in ("verdict", "count", "block")} == {
        "verdict": "no head is an induction head", "count": "408", "block": "- It **can** continue text"}
