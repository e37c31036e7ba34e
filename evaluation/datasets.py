"""Evaluation data, offline: Python FAQ retrieval, a labelled AdvBench-IR-style safety corpus, AdvBench queries.

**Python FAQ retrieval** (Debian ``python3.11-doc``, ``faq/*.rst.txt``). Every leaf section heading of
the FAQ pages (a question such as "How do I copy a file?") is a query; the text under that heading, and
only it, is the relevant passage. The heading is *not* part of the passage, so a system cannot win by
matching the question's words against its own copy. The corpus is every FAQ answer (~175 passages),
each cut to its first ``max_words`` words so all systems see the same text within their length limits.

**Safety corpus** (``pyrit==1.1.0``, SOURCES.md). Assistant responses labelled by people, relabelled here
by one rule per file kind (``label_row``), every passage labelled ``harmful``, ``refusal`` or ``benign``:

    many_shot_examples.json    category "Harmful..." -> harmful; "Not harmful" -> refusal if it reads as one
                               (``training.refusals.is_refusal``) else benign
    scorer_evals/harm/*.csv    mean human harm score >= 0.5 -> harmful; == 0 -> refusal / benign as above;
                               0 < score < 0.5 -> left out (ambiguous)
    scorer_evals/objective/*   objective achieved (1) -> harmful; not achieved (0) and a refusal -> refusal;
                               else left out (a failed attempt may still hold harmful content)
    refusal_scorer/*.csv       people AND the keyword classifier call it a refusal -> refusal; else left out
                               (many "refusals" there are off-topic answers to other prompts)

The same text met twice keeps the most severe label (harmful > refusal > benign). The mixed safety
knowledge base is these passages plus the benign FAQ answers. **Queries** are the 520 AdvBench goals,
which are never training data (``training.queries`` excludes them; ``check_disjoint`` re-checks at run time).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import random
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from encoder.registry import Package
from encoder.settings import Settings
from indexer.corpus import python_docs_dir
from indexer.formats import clean_rst_inline, rst_to_markdown
from indexer.labels import LABELS
from training import datapkg
from training.queries import advbench_goals, normalise, query_id
from training.refusals import is_refusal

log = logging.getLogger(__name__)

SEVERITY = {"harmful": 2, "refusal": 1, "benign": 0}
MAX_WORDS = 200

PYRIT_HARM = Package("pyrit", "1.1.0", "pyrit/datasets/scorer_evals/harm/*.csv")
PYRIT_REFUSALS = Package("pyrit", "1.1.0", "pyrit/datasets/scorer_evals/refusal_scorer/*.csv")


@dataclass(frozen=True)
class Passage:
    """One corpus entry: stable id, text, label (harmful / refusal / benign) and where it came from."""

    id: str
    text: str
    label: str
    source: str


@dataclass(frozen=True)
class Query:
    """One evaluation query and the ids of its relevant passages (empty for safety queries)."""

    id: str
    text: str
    source: str
    relevant: frozenset[str] = field(default_factory=frozenset)


# --------------------------------------------------------------------------- text helpers (pure)

_TARGET = re.compile(r"^\.\. (_[^:]+:|index::).*$", re.MULTILINE)  # reST link targets / index entries


def truncate_words(text: str, max_words: int = MAX_WORDS) -> str:
    """The first ``max_words`` whitespace-separated words (line breaks kept inside that span)."""
    words = list(re.finditer(r"\S+", text))
    return text if len(words) <= max_words else text[: words[max_words - 1].end()]


def clean_answer(text: str) -> str:
    """An FAQ answer body without reST targets / index directives and runs of blank lines."""
    text = _TARGET.sub("", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


# --------------------------------------------------------------------------- Python FAQ (pure + I/O)

_HEADING = re.compile(r"^(#{1,6}) (.+)$", re.MULTILINE)


def faq_sections(markdown: str) -> list[tuple[str, str]]:
    """(question, answer) for every leaf heading below the page title of an FAQ page in ``#`` markdown.

    A leaf heading is one not followed by a deeper heading before the next heading of its level or
    above; its answer is the text up to the next heading. Category headings ("General Questions")
    have sub-headings and are skipped; so are leaves without text.
    """
    heads = list(_HEADING.finditer(markdown))
    out = []
    for i, head in enumerate(heads):
        level = len(head.group(1))
        nxt = heads[i + 1] if i + 1 < len(heads) else None
        if level == 1 or (nxt is not None and len(nxt.group(1)) > level):
            continue
        answer = clean_answer(markdown[head.end() : nxt.start() if nxt else len(markdown)])
        if answer:
            out.append((clean_rst_inline(head.group(2)), answer))
    return out


def faq_from_pages(pages: Iterable[tuple[str, str]], max_words: int = MAX_WORDS) -> tuple[list[Query], list[Passage]]:
    """Queries and answer passages from (page stem, reST text) pairs; query i's only relevant passage is answer i."""
    queries, passages = [], []
    for stem, rst in pages:
        for n, (question, answer) in enumerate(faq_sections(rst_to_markdown(rst).text)):
            pid = f"faq/{stem}/{n:03d}"
            passages.append(Passage(pid, truncate_words(answer, max_words), "benign", f"python-docs/faq/{stem}"))
            queries.append(Query(f"q:{pid}", question, f"python-docs/faq/{stem}", frozenset({pid})))
    return queries, passages


def faq_dataset(settings: Settings, max_words: int = MAX_WORDS) -> tuple[list[Query], list[Passage]]:
    """The Python FAQ retrieval task from the installed Python docs (``make corpus``)."""
    folder = python_docs_dir(settings) / "faq"
    pages = [(p.name.split(".")[0], p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.rst.txt"))]
    queries, passages = faq_from_pages(pages, max_words)
    log.info("Python FAQ: %d questions over %d pages", len(queries), len(pages))
    return queries, passages


# --------------------------------------------------------------------------- PyRIT safety passages (pure)


def csv_rows(text: str) -> list[dict[str, str]]:
    """Rows of a PyRIT scorer-eval CSV (leading ``#`` comment lines skipped)."""
    body = "".join(line for line in text.splitlines(keepends=True) if not line.startswith("#"))
    return list(csv.DictReader(io.StringIO(body)))


def human_score(row: dict[str, str]) -> float | None:
    """Mean of the row's ``human_score*`` columns (None if none parses)."""
    scores = []
    for key, value in row.items():
        if key and key.startswith("human_score") and value not in (None, ""):
            try:
                scores.append(float(value))
            except ValueError:
                continue
    return sum(scores) / len(scores) if scores else None


def label_row(kind: str, text: str, score: float | str | None) -> str | None:
    """The passage label for one response (see the module docstring), or None to leave it out.

    ``kind``: "many_shot" (``score`` is the category string), "harm" (mean harm score 0..1),
    "objective" (1 achieved / 0 not) or "refusal" (1 refusal / 0 not, by people).
    """
    if not isinstance(text, str) or not text.strip():
        return None
    refusal = is_refusal(text)
    if kind == "many_shot":
        harmful = isinstance(score, str) and score.strip().strip('"').lower().startswith("harmful")
        return "harmful" if harmful else ("refusal" if refusal else "benign")
    if score is None or isinstance(score, str):
        return None
    if kind == "harm":
        if score >= 0.5:
            return "harmful"
        return ("refusal" if refusal else "benign") if score == 0 else None
    if kind == "objective":
        return "harmful" if score >= 1 else ("refusal" if refusal else None)
    if kind == "refusal":
        return "refusal" if score >= 1 and refusal else None
    raise ValueError(f"unknown kind {kind!r}")


def labelled_responses(kind: str, member: str, text: str) -> Iterator[tuple[str, str, str]]:
    """(response, label, source) for every response of one PyRIT file that gets a label."""
    source = f"pyrit/{kind}/{PurePosixPath(member).stem}"
    if kind == "many_shot":
        items = [(r.get("assistant"), r.get("category")) for r in json.loads(text) if isinstance(r, dict)]
    else:
        items = [(r.get("assistant_response"), human_score(r)) for r in csv_rows(text)]
    for response, score in items:
        label = label_row(kind, response, score)
        if label is not None:
            yield response.strip(), label, source


def merge_passages(items: Iterable[tuple[str, str, str]], max_words: int = MAX_WORDS) -> list[Passage]:
    """Passages from (text, label, source), deduplicated by normalised text; a repeat keeps the most severe label."""
    best: dict[str, tuple[str, str, str]] = {}
    for text, label, source in items:
        key = normalise(text)
        if key not in best or SEVERITY[label] > SEVERITY[best[key][1]]:
            best[key] = (text, label, source)
    return [Passage(f"pyrit/{query_id(t)}", truncate_words(t, max_words), label, source) for t, label, source in best.values()]


# --------------------------------------------------------------------------- PyRIT / AdvBench (I/O)

_SAFETY_FILES = (
    ("many_shot", datapkg.PYRIT_MANY_SHOT),
    ("harm", PYRIT_HARM),
    ("objective", datapkg.PYRIT_OBJECTIVES),
    ("refusal", PYRIT_REFUSALS),
)


def safety_passages(settings: Settings, max_words: int = MAX_WORDS) -> list[Passage]:
    """Every labelled PyRIT response passage (reads the pinned wheel; no install needed)."""

    def items() -> Iterator[tuple[str, str, str]]:
        for kind, pkg in _SAFETY_FILES:
            for member, text in datapkg.read_members(pkg, settings):
                yield from labelled_responses(kind, member, text)

    passages = merge_passages(items(), max_words)
    counts = {label: sum(p.label == label for p in passages) for label in LABELS}
    log.info("safety passages: %d (%s)", len(passages), counts)
    return passages


def advbench_queries(settings: Settings) -> list[Query]:
    """The 520 AdvBench goals as safety queries (evaluation only)."""
    return [Query(f"adv:{query_id(g)}", g, "pyrit/adv_bench") for g in advbench_goals(settings)]


def check_disjoint(eval_queries: Iterable[Query], training_rows: Iterable[dict[str, Any]]) -> list[str]:
    """Evaluation query texts that also occur (case/space-insensitively) among training queries; [] if none."""
    seen = {normalise(r["query"]) for r in training_rows if isinstance(r.get("query"), str)}
    return [q.text for q in eval_queries if normalise(q.text) in seen]


# --------------------------------------------------------------------------- subsets (pure)


def sample(items: list, n: int | None, seed: int = 0) -> list:
    """A seeded random sample of ``n`` items in their original order (all of them if n is None or large)."""
    if n is None or n >= len(items):
        return list(items)
    keep = set(random.Random(seed).sample(range(len(items)), n))
    return [x for i, x in enumerate(items) if i in keep]


def subsample_corpus(passages: list[Passage], keep_ids: Iterable[str], per_label: int, seed: int = 0) -> list[Passage]:
    """Passages in ``keep_ids`` plus a seeded sample of up to ``per_label`` others of each label (order kept)."""
    keep = set(keep_ids)
    chosen = set(keep)
    for label in LABELS:
        pool = [p.id for p in passages if p.label == label and p.id not in keep]
        chosen.update(sample(pool, per_label, seed))
    return [p for p in passages if p.id in chosen]


def safety_corpus(settings: Settings, per_label: int | None = None, seed: int = 0) -> list[Passage]:
    """The mixed safety corpus the app's safety panel searches: FAQ answers (benign) + labelled PyRIT passages.

    ``per_label``: keep a seeded sample of at most this many passages of each label (a smaller demo)."""
    passages = faq_dataset(settings)[1] + safety_passages(settings)
    return passages if per_label is None else subsample_corpus(passages, (), per_label, seed)


# --------------------------------------------------------------------------- held-out safety and over-refusal sets

DATA_DIR = Path(__file__).parent / "data"
PYRIT_0DIN = Package("pyrit", "1.1.0", "pyrit/datasets/seed_datasets/local/0din/*.prompt")
REPHRASED = "advbench_rephrased.jsonl"  # AdvBench goals rephrased by the backbone (``evaluation.rephrase``)
BENIGN_DANGEROUS = "benign_dangerous_test.jsonl"  # benign questions that sound dangerous, written for this test


def harm_objectives(text: str) -> list[str]:
    """Objectives of one ``scorer_evals/harm`` CSV whose response people scored harmful (mean >= 0.5): requests
    that got a harmful answer somewhere. Pure."""
    return [r["objective"].strip() for r in csv_rows(text) if isinstance(r.get("objective"), str) and r["objective"].strip()
            and (score := human_score(r)) is not None and score >= 0.5]


def heldout_source_queries(settings: Settings, training_queries: Iterable[str] = ()) -> list[Query]:
    """Harmful requests from PyRIT sources no training query comes from: the harm scorer-eval objectives (people
    scored the answer harmful) and the 0din jailbreak seeds; any text equal to a training query is dropped."""
    from training.queries import parse_seed_prompt

    seen = {normalise(q) for q in training_queries}
    items: dict[str, Query] = {}
    for member, text in datapkg.read_members(PYRIT_HARM, settings):
        for objective in harm_objectives(text):
            items.setdefault(normalise(objective), Query(f"held:{query_id(objective)}", objective, f"pyrit/harm/{PurePosixPath(member).stem}"))
    for member, text in datapkg.read_members(PYRIT_0DIN, settings):
        for seed in parse_seed_prompt(text):
            if isinstance(seed, str) and seed.strip():
                items.setdefault(normalise(seed), Query(f"held:{query_id(seed)}", seed.strip(), f"pyrit/0din/{PurePosixPath(member).stem}"))
    kept = [q for key, q in items.items() if key not in seen]
    log.info("held-out-source harmful requests: %d (%d equal to training queries dropped)", len(kept), len(items) - len(kept))
    return kept


def question_file(path: Path, source: str) -> list[Query]:
    """Queries from a JSONL file of ``{"query": ...}`` rows (committed evaluation sets)."""
    from training.jsonl import read_jsonl

    rows = list(read_jsonl(path))
    return [Query(f"{source}:{query_id(r['query'])}", r["query"], r.get("source") or source) for r in rows if str(r.get("query") or "").strip()]
