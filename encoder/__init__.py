"""gensearch encoders: LLM2Vec-Gen (frozen LLM + trained special tokens) and sentence encoders.

    from encoder import load_encoder
    enc = load_encoder()                      # LLM2Vec-Gen, default backbone + shipped adapter
    enc.encode(["how do I read a file?"], task="query")   # (1, 768) float32, L2-normalised
    enc.decode(["how do I read a file?"])     # what the embedding "says"
    load_encoder("baseline").encode(["..."])  # all-MiniLM-L6-v2, same interface
"""

from .adapter import AdapterError
from .base import Encoder
from .fetch import FetchError, HashMismatchError
from .llm2vec_gen import LLM2VecGenEncoder
from .loading import load_encoder
from .settings import Settings, get_settings

__all__ = [
    "AdapterError",
    "Encoder",
    "FetchError",
    "HashMismatchError",
    "LLM2VecGenEncoder",
    "Settings",
    "get_settings",
    "load_encoder",
]
