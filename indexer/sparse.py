"""Sparse term vectors for keyword and hybrid search: BM25 term weights of each chunk, IDF on the query side.

Dense retrieval is weakest exactly where keyword retrieval is strongest: exact identifiers such as
``pg_stat_activity``, ``os.path.join`` or ``E1101``. Each chunk gets a sparse vector beside its dense one,
and a query's score is

    sum over query terms t:  idf(t) * tf_weight(t, chunk),   tf_weight = tf (k1 + 1) / (tf + k1 (1 - b + b |chunk| / AVG_TERMS))

(BM25 with a fixed average length: chunks are cut to a few hundred tokens, so it barely varies).

``idf`` comes from one of two places (``IDF_SOURCES``; a collection's sparse-vector modifier records which):

- ``public`` (new collections): from word frequencies of public text (``wordfreq``: English web, books,
  subtitles...), ``ln(1 + 1 / frequency)``, unknown words (most identifiers) the rarest. A score then depends
  on the query and the chunk only, never on documents the caller cannot read.
- ``collection``: Qdrant's IDF modifier over every chunk of the collection. A word's weight then reveals how
  often it occurs in documents the caller may not read (a side channel), so it is opt-in
  (``GENSEARCH_KEYWORD_IDF=collection``) and collections made before it keep it until ``--recreate``.

Terms: lower-cased words, numbers and identifiers kept whole (``pg_stat_activity``, ``os.path.join``),
plus the parts of an identifier (``pg``, ``stat``, ``activity``) so that either form matches. Letters
are Unicode letters (``Straße``, ``данные``, ``café`` are terms); scripts written without spaces
(Chinese, Japanese) give one term per run of characters, so keyword search is weak there. A term's id
is a stable 32-bit hash of it (the same in every process; collisions at 2^32 are negligible).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from functools import lru_cache
from typing import Literal

from qdrant_client import models

SPARSE_VECTOR = "bm25"  # the sparse vector's name in a collection
K1, B, AVG_TERMS = 1.2, 0.75, 120.0
IdfSource = Literal["public", "collection"]
IDF_SOURCES = ("public", "collection")
RAREST = 1e-8  # the frequency of a word public text never shows (an identifier): idf ~18.4

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


@lru_cache(maxsize=65536)
def public_idf(term: str) -> float:
    """``ln(1 + 1 / f)`` with ``f`` the term's frequency in public English text (wordfreq), at least ``RAREST``."""
    from wordfreq import word_frequency

    return math.log1p(1.0 / max(word_frequency(term, "en"), RAREST))


def query_vector(text: str, idf: IdfSource = "collection") -> models.SparseVector:
    """One weight per distinct query term: 1 where Qdrant multiplies in the collection's IDF (``collection``),
    else the term's ``public_idf``."""
    return _vector({term_id(t): 1.0 if idf == "collection" else public_idf(t) for t in terms(text)})


def sparse_params(idf: IdfSource) -> models.SparseVectorParams:
    """How a new collection declares its keyword vectors: with Qdrant's IDF modifier only for ``collection``."""
    return models.SparseVectorParams(modifier=models.Modifier.IDF if idf == "collection" else models.Modifier.NONE)
