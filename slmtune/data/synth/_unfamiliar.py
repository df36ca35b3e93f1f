"""Text of random common words, in no list of ours (mention replacement, as in NER
augmentation): content a model trained on our generators cannot recognise, so where a
complaint or a page's body starts and ends can only be told by what is around it (a plea,
a label, a footer), never by knowing its words. Real texts are all unfamiliar to it.
"""

from __future__ import annotations

import random

from faker.providers.lorem.zh_CN import Provider as ChineseLorem


def common_words(marks: list[str]) -> list[str]:
    """Faker's common Chinese words, less any that one of `marks` (the labels, pleas, footers
    and other parts around the value) uses: random words never read as one of those."""
    return [w for w in dict.fromkeys(ChineseLorem.word_list) if not any(w in m for m in marks)]


def unfamiliar(rng: random.Random, words: list[str], least: int, most: int) -> str:
    """`least` to `most` of `words`, drawn at random and run together."""
    return "".join(rng.sample(words, rng.randrange(least, most + 1)))
