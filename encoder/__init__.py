"""gensearch encoders: LLM2Vec-Gen (frozen LLM + trained special tokens) and sentence encoders.

    from encoder import load_encoder
    enc = load_encoder()                      # LLM2Vec-Gen, default backbone + shipped adapter
    enc.encode(["how do I read a file?"], task="query")   # (1, 768) float32, L2-normalised
    enc.decode(["how do I read a file?"])     # what the embedding "says"
    load_encoder("baseline").encode(["..."])  # all-MiniLM-L6-v2, same interface

Names are imported on first use (PEP 562), so `gensearch --help` does not pay for torch.
"""

from importlib import import_module

_EXPORTS = {
    "AdapterError": ".adapter",
    "Encoder": ".base",
    "FetchError": ".fetch",
    "HashMismatchError": ".fetch",
    "LLM2VecGenEncoder": ".llm2vec_gen",
    "Settings": ".settings",
    "get_settings": ".settings",
    "load_encoder": ".loading",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name], __name__), name)
