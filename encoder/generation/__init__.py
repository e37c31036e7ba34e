"""Text generation, one home: chat prompts, engines (transformers, llama.cpp), EOS handling.

Used by training responses, the refusal measurement, HyDE in the evaluation and RAG answers::

    from encoder.generation import load_engine, DEFAULT_SYSTEM, resolve_system
    engine = load_engine("auto", backbone, batch_size=16)
    answers = engine.answer(["How do I sort a dict?"], system=resolve_system(DEFAULT_SYSTEM)[1], max_new_tokens=64)
"""

from .answers import Answer, split_answer, strip_eos
from .engines import ENGINES, CTranslate2Engine, Engine, EngineName, LlamaCppEngine, TransformersEngine, load_engine, resolve_engine
from .prompts import DEFAULT_SYSTEM, SAFETY_SYSTEM_PROMPT, SYSTEM_PROMPTS, chat_prompt_ids, chat_prompts, resolve_system

__all__ = [
    "Answer", "CTranslate2Engine", "DEFAULT_SYSTEM", "ENGINES", "Engine", "EngineName", "LlamaCppEngine", "SAFETY_SYSTEM_PROMPT", "SYSTEM_PROMPTS",
    "TransformersEngine", "chat_prompt_ids", "chat_prompts", "load_engine", "resolve_engine", "resolve_system", "split_answer", "strip_eos",
]
