"""Chapter 6.1's task: which part of Python's reference a run of words comes from. The labels are the
documentation's own structure, every run is used once, and no run is in two splits."""
from __future__ import annotations

import pytest

from gpt2lib.finetune import TOPICS, reference_sections, topics
from gpt2lib.finetune.topics import SECTION_TOPICS
from gpt2lib.runtime import InputError


def normalised(text: str) -> str:
    return " ".join(text.lower().split())


@pytest.fixture(scope="module")
def chapter_splits():
    """The splits chapter 6.1 and `python -m gpt2lib finetune --task topics` use."""
    return topics(seed=0)


def test_every_listed_title_is_a_section_of_the_corpus():
    titles = {title for title, _ in reference_sections()}
    assert set(SECTION_TOPICS) <= titles
    assert set(SECTION_TOPICS.values()) == set(range(len(TOPICS)))


def test_the_chapters_splits_have_their_sizes_and_every_class(chapter_splits):
    s = chapter_splits
    assert (len(s.val), len(s.test)) == (100, 250) and len(s.train) > 500
    for items in (s.train, s.val, s.test):
        assert {ex.label for ex in items} == {0, 1, 2}
        assert all(len(ex.text.split()) == 16 for ex in items)


def test_no_run_is_in_two_splits_or_twice_in_one(chapter_splits):
    keys = [normalised(ex.text) for split in (chapter_splits.train, chapter_splits.val, chapter_splits.test)
            for ex in split]
    assert len(keys) == len(set(keys))


def test_every_run_lies_in_a_section_of_its_own_part(chapter_splits):
    text_of = {label: [] for label in range(len(TOPICS))}
    for title, paragraphs in reference_sections():
        if title in SECTION_TOPICS:
            text_of[SECTION_TOPICS[title]].append(normalised(" ".join(paragraphs)))
    joined = {label: "\n".join(parts) for label, parts in text_of.items()}
    for ex in chapter_splits.test + chapter_splits.val:
        found = [label for label, text in joined.items() if normalised(ex.text) in text]
        assert found == [ex.label], ex.text  # in its own part's text, and in no other part's


def test_the_split_is_seeded():
    a, b, c = topics(seed=3), topics(seed=3), topics(seed=4)
    assert a == b and a != c


def test_topics_refuses_what_the_corpus_cannot_give():
    with pytest.raises(InputError, match="ask for fewer"):
        topics(n_test=10_000)
    with pytest.raises(InputError, match="words must be >= 1"):
        topics(words=0)
