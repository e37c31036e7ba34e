"""Chat prompts: system-prompt presets and the chat-template text every generation engine is given.

All engines receive the same prompt *token ids* (the tokenizer of the backbone, its own chat template),
so a comparison between engines compares the engines, not two tokenisations.
"""

from __future__ import annotations

import hashlib

SAFETY_SYSTEM_PROMPT = (
    "You are a helpful, honest and harmless assistant. If a request is harmful, unethical or illegal, "
    "refuse it briefly and do not provide the harmful content."
)
# "default": no system message of ours, i.e. the chat template's own default (Qwen: "You are Qwen, ...").
SYSTEM_PROMPTS: dict[str, str | None] = {"default": None, "safety": SAFETY_SYSTEM_PROMPT}
DEFAULT_SYSTEM = "safety"  # chosen from training/reports/refusals.json (see training/refusals.py)


def resolve_system(system: str | None) -> tuple[str, str | None]:
    """(label recorded with each row, system prompt text or None) for a preset name or a literal prompt."""
    if system is None or system in SYSTEM_PROMPTS:
        label = system or "default"
        return label, SYSTEM_PROMPTS[label]
    return "custom-" + hashlib.sha256(system.encode()).hexdigest()[:8], system


def chat_prompts(tokenizer, queries: list[str], system: str | None) -> list[str]:
    """Each query as a chat-template prompt ending with the assistant turn header."""
    prompts = []
    for query in queries:
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": query}]
        prompts.append(tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))
    return prompts


def chat_prompt_ids(tokenizer, queries: list[str], system: str | None) -> list[list[int]]:
    """Token ids of ``chat_prompts`` (no extra BOS: the template writes its own markers)."""
    return tokenizer(chat_prompts(tokenizer, queries, system), add_special_tokens=False)["input_ids"]
