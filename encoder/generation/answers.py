"""A generated answer and its end-of-sequence handling: the one place that knows how EOS is stored.

A response the model finished by itself keeps its real EOS token string at the end (so L_recon learns to
stop) and records it in ``eos``; a response cut at ``max_new_tokens`` has ``eos == ""``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Answer:
    response: str  # the text, plus the EOS token string when finished
    eos: str
    finished: bool
    n_tokens: int  # generated tokens, EOS included

    @property
    def text(self) -> str:
        """The answer without its EOS string, stripped (what a reader or a teacher sees)."""
        return strip_eos(self.response, self.eos).strip()


def strip_eos(response: str, eos: str | None) -> str:
    """``response`` without a trailing ``eos`` string (unchanged when it has none)."""
    return response[: len(response) - len(eos)] if eos and response.endswith(eos) else response


def split_answer(tokens: list[int], eos_ids: set[int], tokenizer) -> Answer:
    """Cut generated ids at the first EOS; decode the text and re-append the EOS token's own string."""
    stop = next((i for i, t in enumerate(tokens) if t in eos_ids), None)
    body = tokens if stop is None else tokens[:stop]
    text = tokenizer.decode(body, skip_special_tokens=True)
    if stop is None:
        return Answer(text, "", False, len(tokens))
    eos = tokenizer.decode([tokens[stop]], skip_special_tokens=False)
    return Answer(text + eos, eos, True, stop + 1)
