"""Request and response bodies. ``/v1/embeddings`` follows the OpenAI embeddings API shape.

Requests are checked here for types and emptiness (pydantic); size limits that depend on the server's
settings (items per request, characters per text) are checked by ``check_limits``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Task = Literal["query", "document", "similarity"]

_TASK_HELP = "Which LLM2Vec-Gen instruction to use: query, document or similarity (sentence encoders ignore it)."


def is_token_ids(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)


def as_texts(value: Any) -> list[str]:
    """A string, a non-empty list of non-blank strings, or token ids (one list of ints, or a list of them: OpenAI's
    ``cl100k_base`` ids, ``token_ids``), as a list of texts; ValueError with a clear message otherwise."""
    from .token_ids import decode_token_ids

    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise ValueError(f"input must be a string or a list of strings, not {type(value).__name__}")
    if not value:
        raise ValueError("input is empty: send at least one string")
    if is_token_ids(value):
        value = [decode_token_ids(value)]
    elif all(isinstance(item, list) for item in value):
        value = [decode_token_ids(item, f"input[{i}]") if is_token_ids(item) else item for i, item in enumerate(value)]
    for i, item in enumerate(value):
        if isinstance(item, (int, list)):
            raise ValueError(f"input[{i}]: send text, or token ids as a list of ints (one input) or a list of such lists")
        if not isinstance(item, str):
            raise ValueError(f"input[{i}] must be a string, not {type(item).__name__}")
        if not item.strip():
            raise ValueError(f"input[{i}] is empty or only whitespace")
        try:
            item.encode("utf-8")
        except UnicodeEncodeError as exc:  # a lone surrogate ("\ud800") is valid JSON but not text
            raise ValueError(f"input[{i}] holds {item[exc.start]!r} at character {exc.start}, which is not valid Unicode text; send UTF-8 text") from exc
    return value


def check_limits(texts: list[str], max_items: int, max_chars: int) -> None:
    """Raise ValueError if a request has too many texts or a text is too long."""
    if len(texts) > max_items:
        raise ValueError(f"input has {len(texts)} items; at most {max_items} per request (split the request)")
    for i, text in enumerate(texts):
        if len(text) > max_chars:
            raise ValueError(f"input[{i}] has {len(text)} characters; at most {max_chars} per text")


class TextsRequest(BaseModel):
    """Texts plus the task that picks the instruction."""

    model_config = ConfigDict(extra="forbid")

    input: str | list[str] = Field(description="One text, a list of texts, or OpenAI cl100k_base token ids (a list of ints, or a list of them).")
    model: str | None = Field(None, description="Served model id (see GET /v1/models); default: the served model.")
    task: Task = Field("query", description=_TASK_HELP)

    @field_validator("input", mode="before")
    @classmethod
    def _normalise(cls, value: Any) -> list[str]:
        return as_texts(value)

    @property
    def texts(self) -> list[str]:
        return self.input if isinstance(self.input, list) else [self.input]


INPUT_TYPES: dict[str, Task] = {  # the names other embedding services use for the same choice
    "query": "query", "search_query": "query",
    "document": "document", "passage": "document", "search_document": "document",
    "similarity": "similarity", "classification": "similarity", "clustering": "similarity",
}


class EmbeddingRequest(TextsRequest):
    """OpenAI ``POST /v1/embeddings`` body, plus ``task`` or ``input_type``. Unknown fields are ignored (OpenAI
    clients send extras).

    ``input_type`` is how other embedding services (Cohere, Voyage, Jina, Nomic) let a client say what it sends:
    ``query`` / ``search_query``, ``document`` / ``passage`` / ``search_document``, or ``similarity`` /
    ``classification`` / ``clustering``. Without either field the input is embedded as a query (``task``'s
    default): a client that indexes documents should send ``input_type: document``."""

    model_config = ConfigDict(extra="ignore")

    input_type: str | None = Field(None, description="query, document or similarity (also search_query, passage, search_document, "
                                   "classification, clustering); the same as task. Default: query.")

    encoding_format: Literal["float", "base64"] = Field(
        "float", description="float: JSON numbers; base64: little-endian float32 bytes, base64-encoded (as OpenAI)."
    )
    dimensions: int | None = Field(None, ge=1, description="Must equal the model's dimension if given (no truncation).")
    user: str | None = None

    @field_validator("input_type")
    @classmethod
    def _known_input_type(cls, value: str | None) -> str | None:
        if value is not None and value not in INPUT_TYPES:
            raise ValueError(f"unknown input_type {value!r}; use one of {', '.join(INPUT_TYPES)}")
        return value

    @model_validator(mode="after")
    def _one_task(self) -> EmbeddingRequest:
        if self.input_type is not None:
            task = INPUT_TYPES[self.input_type]
            if "task" in self.model_fields_set and self.task != task:
                raise ValueError(f"task {self.task!r} and input_type {self.input_type!r} disagree; send one of them")
            self.task = task
        return self


class DecodeRequest(TextsRequest):
    max_new_tokens: int = Field(64, ge=1, le=512, description="Length limit of each decoded text, in tokens.")


class LensRequest(TextsRequest):
    top_k: int = Field(5, ge=1, le=50, description="Tokens read per special position.")
    words: int = Field(12, ge=0, le=200, description="How many distinct words to return per text.")


class Embedding(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str
    safety: dict | None = Field(None, description="Queries through an encoder with a refusal gate: its probability, threshold, "
                                "whether it reads the query as a harmful request and what was done (route: LLM2Vec-Gen's own vector pulled towards refusals).")


class Usage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[Embedding]
    model: str
    usage: Usage


class Decoded(BaseModel):
    index: int
    text: str


class DecodeResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[Decoded]
    model: str


class Lens(BaseModel):
    index: int
    tokens: list[list[str]] = Field(description="Top-k LM-head tokens per special position: [position][rank].")
    words: list[str] = Field(description="Distinct readable words of the lens, most confident first.")


class LensResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[Lens]
    model: str


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "gensearch"
    dim: int
    encoder: str


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
