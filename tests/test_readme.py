"""The README's first example: ``sciner predict --text "<sentence>"`` right after ``make run`` and the
entities it prints. ``tests/test_stack_e2e.py`` checks that the quickstart champion ``make run`` trains
(``data/seed/recipe.env``) finds exactly those entities, over HTTP and with ``sciner predict``.
"""

from __future__ import annotations

import json
import re

from tests.conftest import REPO

README = REPO / "README.md"


def readme_example() -> tuple[str, list[dict]]:
    """The sentence of the README's first ``sciner predict --text`` and the entities shown after it."""
    text = README.read_text(encoding="utf-8")
    sentence = re.search(r'sciner predict --text "([^"]+)"', text).group(1)
    shown = re.search(r"```json\n(.*?)```", text[text.index(sentence) :], flags=re.S).group(1)
    answer = json.loads(shown)
    assert answer["text"] == sentence
    return sentence, answer["entities"]


def test_the_readme_example_output_is_consistent():
    sentence, entities = readme_example()
    assert len({e["label"] for e in entities}) >= 5
    for e in entities:
        assert sentence[e["start"] : e["end"]] == e["text"]
