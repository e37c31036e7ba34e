from encoder.llm2vec_gen import lens_keywords


def test_words_come_rank_by_rank_distinct_and_case_folded():
    per_position = [[" Python", " list"], ["python", " sorted"], ["<|im_end|>", " Sort"]]
    assert lens_keywords(per_position, skip={"<|im_end|>"}) == ["python", "list", "sorted", "sort"]


def test_short_and_non_word_tokens_are_dropped_and_limit_applies():
    assert lens_keywords([[" a", "..", " of", " dict"], [" keys"]], limit=1) == ["keys"]


def test_chat_template_tokens_are_never_words_even_if_not_marked_special():
    assert lens_keywords([["<|im_start|>", " list"], [" <|endoftext|>"]]) == ["list"]
