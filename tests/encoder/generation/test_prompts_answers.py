"""Chat prompts, system-prompt presets and EOS handling: the same for every engine."""

from encoder.generation import SAFETY_SYSTEM_PROMPT, chat_prompt_ids, chat_prompts, resolve_system, split_answer, strip_eos


def test_resolve_system_presets_and_literal():
    assert resolve_system("safety") == ("safety", SAFETY_SYSTEM_PROMPT)
    assert resolve_system("default") == ("default", None)
    label, text = resolve_system("Be terse.")
    assert label.startswith("custom-") and text == "Be terse."


def test_chat_prompts_use_the_template_and_system(smol_backbone):
    prompt = chat_prompts(smol_backbone.tokenizer, ["hi"], "Be terse.")[0]
    assert "Be terse." in prompt and prompt.rstrip().endswith("assistant")


def test_prompt_ids_are_the_template_tokens_without_an_extra_bos(smol_backbone):
    tok = smol_backbone.tokenizer
    (ids,) = chat_prompt_ids(tok, ["hi"], None)
    assert ids == tok.apply_chat_template([{"role": "user", "content": "hi"}], add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]


def test_split_answer_appends_the_real_eos(smol_backbone):
    tok = smol_backbone.tokenizer
    eos = tok.eos_token_id
    ids = tok.encode("Hello there", add_special_tokens=False)
    done = split_answer(ids + [eos, eos, eos], {eos}, tok)
    assert done.finished and done.response == "Hello there" + tok.eos_token and done.eos == tok.eos_token
    assert done.n_tokens == len(ids) + 1 and done.text == "Hello there"
    cut = split_answer(ids, {eos}, tok)
    assert not cut.finished and cut.response == "Hello there" and cut.eos == "" and cut.text == "Hello there"


def test_strip_eos_removes_only_a_trailing_marker():
    assert strip_eos("Hi.<|im_end|>", "<|im_end|>") == "Hi."
    assert strip_eos("Hi.", "") == "Hi." and strip_eos("Hi.", None) == "Hi."
    assert strip_eos("<|im_end|> inside", "<|im_end|>") == "<|im_end|> inside"
