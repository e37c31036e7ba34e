"""Sparse term vectors for keyword and hybrid search: BM25 term weights here, IDF applied by Qdrant.

Dense retrieval is weakest exactly where keyword retrieval is strongest: exact identifiers such as
``pg_stat_activity``, ``os.path.join`` or ``E1101``. Each chunk gets a sparse vector beside its dense one;
the collection declares it with Qdrant's IDF modifier, so a query's score is

    sum over query terms t:  idf(t) * tf_weight(t, chunk),   tf_weight = tf (k1 + 1) / (tf + k1 (1 - b + b |chunk| / AVG_TERMS))

(BM25 with a fixed average length: chunks are cut to a few hundred tokens, so it barely varies).

Terms: lower-cased words, numbers and identifiers kept whole (``pg_stat_activity``, ``os.path.join``),
plus the parts of an identifier (``pg``, ``stat``, ``activity``) so that either form matches. Letters
are Unicode letters (``Straße``, ``данные``, ``café`` are terms); scripts written without spaces
(Chinese, Japanese) give one term per run of characters, so keyword search is weak there. A term's id
is a stable 32-bit hash of it (the same in every process; collisions at 2^32 are negligible).
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter

from qdrant_client import models

SPARSE_VECTOR = "bm25"  # the sparse vector's name in a collection
K1, B, AVG_TERMS = 1.2, 0.75, 120.0

_TOKEN = re.compile(r"[^\W_]+(?:[._:-][^\W_]+)*")  # letters/digits of any script, joined by . _ : -
_PART = re.compile(r"[^\W\d_]+|\d+")
STOPWORDS = frozenset(
    "a an and are as at be by can do does for from how i if in into is it its of on or so that the their then "
    "there these this to was what when where which who why will with you your".split()
)


def terms(text: str) -> list[str]:
    """The terms of ``text``: whole tokens (identifiers intact) and, for compound tokens, their parts."""
    out = []
    for token in _TOKEN.findall(text.lower()):
        if token not in STOPWORDS:
            out.append(token)
        parts = _PART.findall(token)
        if len(parts) > 1:
            out.extend(p for p in parts if p not in STOPWORDS)
    return out


def term_id(term: str) -> int:
    return int.from_bytes(hashlib.blake2b(term.encode("utf-8"), digest_size=4).digest(), "little")


def _vector(weights: dict[int, float]) -> models.SparseVector:
    ids = sorted(weights)
    return models.SparseVector(indices=ids, values=[weights[i] for i in ids])


def document_vector(text: str) -> models.SparseVector:
    """BM25 term weights of a chunk (what indexing stores)."""
    counts = Counter(term_id(t) for t in terms(text))
    length = sum(counts.values())
    norm = K1 * (1 - B + B * length / AVG_TERMS)
    return _vector({tid: tf * (K1 + 1) / (tf + norm) for tid, tf in counts.items()})


def query_vector(text: str) -> models.SparseVector:
    """Weight 1 per distinct query term (Qdrant multiplies in each term's IDF)."""
    return _vector({term_id(t): 1.0 for t in terms(text)})
