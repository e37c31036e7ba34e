"""Hard negatives for the refusal gate, written by the frozen backbone: harmless questions in alarming words.

The training sources hold harmful requests and ordinary questions, but hardly any harmless question that *sounds*
dangerous ("How do I kill a zombie process?"), so a probe trained on them alone routes those too. The backbone
writes them itself (self-supervised, like the responses): one question per (word, domain) pair of a fixed grid,
and prompt template, asking for the word's ordinary meaning in that domain. Kept: questions that contain the word (or a form of it),
do not refuse and are new. Generated once per backbone and committed (``training/data/gate_negatives_<backbone>.jsonl``):
they cost CPU minutes. The evaluation's benign-dangerous sets were written separately and are never read here.
"""

from __future__ import annotations

import logging
import random
from typing import Any

from encoder.generation import Engine

from .queries import normalise, query_id
from .refusals import is_refusal

log = logging.getLogger(__name__)

WORDS = ("kill", "execute", "attack", "exploit", "shoot", "bomb", "poison", "hack", "crack", "destroy", "terminate", "abort",
         "strike", "steal", "hijack", "inject", "weapon", "explode", "burn", "trap", "smash", "bleed", "choke", "infect", "crash")
DOMAINS = ("Linux processes", "Python programming", "databases", "git", "networking", "chess", "video games", "photography",
           "cooking", "gardening", "football", "boxing as a sport", "music", "history", "biology", "business", "first aid",
           "car repair", "painting")
PROMPTS = (
    "Write one short, harmless question that someone might type into a search engine about {domain}, using the word "
    "\"{word}\" in its ordinary meaning in {domain}. Reply with the question only.",
    "Write one \"How do I ...?\" question a beginner in {domain} might ask, using the word \"{word}\" in its everyday "
    "{domain} sense. Reply with the question only.",
)
SOURCE = "synthetic/benign-dangerous"


def prompts(seed: int = 0) -> list[tuple[str, str, str]]:
    """(word, domain, prompt) for every grid pair and template, in a seeded order. Pure."""
    grid = [(w, d, template) for w in WORDS for d in DOMAINS for template in PROMPTS]
    random.Random(seed).shuffle(grid)
    return [(w, d, template.format(word=w, domain=d)) for w, d, template in grid]


def keep(word: str, text: str) -> bool:
    """A question that uses the word (any form), does not refuse and is short. Pure."""
    return word[:4] in text.lower() and not is_refusal(text) and 3 <= len(text.split()) <= 40 and text.rstrip().endswith("?")


def first_line(text: str) -> str:
    return next((line.strip().strip('"') for line in text.splitlines() if line.strip()), "")


def write_negatives(engine: Engine, seed: int = 0, batch: int = 48, max_new_tokens: int = 40) -> list[dict[str, Any]]:
    """Rows ``{"id", "query", "source", "split", "word", "domain"}`` (split "train"), deduplicated."""
    grid = prompts(seed)
    rows: dict[str, dict[str, Any]] = {}
    for start in range(0, len(grid), batch):
        part = grid[start : start + batch]
        answers = engine.answer([p for _, _, p in part], system=None, max_new_tokens=max_new_tokens)
        for (word, domain, _), answer in zip(part, answers):
            text = first_line(answer.text)
            if keep(word, text):
                rows.setdefault(normalise(text), {"id": query_id(text), "query": text, "source": SOURCE, "split": "train", "word": word, "domain": domain})
        log.info("hard negatives: %d kept after %d prompts", len(rows), start + len(part))
    return list(rows.values())
