"""Questions a chunk answers, written by the frozen backbone: the training queries of `gensearch adapt`.

A team's knowledge base has no query log on day one, but the backbone can read a chunk and write the short, varied
questions people type into a search box (GPL, InPars: synthetic questions per passage as training pairs). Kept:
questions that end in "?", are short, do not refuse, are new (normalised), do not speak of "the passage", and do
not quote the chunk (a question
copying a long run of the chunk's words teaches string matching, which the keyword side already does).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .queries import normalise
from .refusals import is_refusal

PROMPT = (
    "Here is a passage from a knowledge base:\n\n\"\"\"\n{chunk}\n\"\"\"\n\n"
    "Write {n} different short questions that a user might type into a search box and that this passage answers. "
    "Vary the wording; do not copy sentences from the passage. One question per line, nothing else."
)
MAX_CHUNK_CHARS = 1500  # what the prompt shows of a chunk (the product's chunks are ~256 tokens)
QUOTE_WORDS = 8  # a question sharing a run of this many words with its chunk quotes it
_NUMBERING = re.compile(r"^\s*(?:[-*•]|\d+[.)]|Q\d*[:.)]?|Question\s*\d*[:.)]?)\s*", re.IGNORECASE)
_WORD = re.compile(r"\w+")
_REFERS = re.compile(r"\b(passage|the (given |above )?text|this text|the article|the snippet)\b", re.IGNORECASE)  # nobody searches so


def question_prompt(chunk: str, n: int = 3, max_chars: int = MAX_CHUNK_CHARS) -> str:
    """The instruction that asks the backbone for ``n`` questions about ``chunk`` (its first ``max_chars``). Pure."""
    return PROMPT.format(chunk=chunk.strip()[:max_chars], n=n)


def quotes(question: str, chunk: str, words: int = QUOTE_WORDS) -> bool:
    """Whether ``question`` shares a run of ``words`` consecutive words with ``chunk`` (case-insensitive). Pure."""
    q = _WORD.findall(question.lower())
    text = " " + " ".join(_WORD.findall(chunk.lower())) + " "
    return any(" " + " ".join(q[i : i + words]) + " " in text for i in range(len(q) - words + 1))


def parse_questions(answer: str, chunk: str, n: int = 3) -> list[str]:
    """At most ``n`` kept questions from the backbone's answer for ``chunk`` (module docstring), in order. Pure."""
    if is_refusal(answer):
        return []
    out: list[str] = []
    seen: set[str] = set()
    for line in answer.splitlines():
        text = _NUMBERING.sub("", line).strip().strip('"').strip()
        if not text.endswith("?") or not 3 <= len(text.split()) <= 30 or quotes(text, chunk) or _REFERS.search(text):
            continue
        key = normalise(text)
        if key not in seen:
            seen.add(key)
            out.append(text)
    return out[:n]


def dedup(rows: Sequence[dict]) -> list[dict]:
    """Rows ``{"question", ...}`` with each normalised question once (the first kept): a question two chunks share
    cannot teach which of them it asks for. Pure."""
    counts: dict[str, int] = {}
    for row in rows:
        key = normalise(row["question"])
        counts[key] = counts.get(key, 0) + 1
    return [row for row in rows if counts[normalise(row["question"])] == 1]
