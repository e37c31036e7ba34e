"""System names: the canonical order, and the fused mode at a chosen teacher weight (``llm2vec-gen-fused@W``)."""

import pytest

from evaluation.systems import check_names, parse_system


def test_a_weight_after_at_names_a_fused_variant():
    assert parse_system("llm2vec-gen-fused@4") == ("llm2vec-gen-fused", 4.0)
    assert parse_system("teacher") == ("teacher", None)


@pytest.mark.parametrize("name", ["teacher@2", "llm2vec-gen-fused@-1", "llm2vec-gen-fused@x", "llm2vec-gen-fused@inf", "llm2vec-gen-fused@nan"])
def test_only_the_fused_mode_takes_a_weight_and_it_must_be_non_negative(name):
    with pytest.raises(ValueError, match="llm2vec-gen-fused@W"):
        parse_system(name)


def test_names_come_back_in_canonical_order_with_weighted_variants_after_their_mode():
    names = check_names(["teacher", "llm2vec-gen-fused@4", "llm2vec-gen", "llm2vec-gen-fused", "llm2vec-gen-fused@2"])
    assert names == ["llm2vec-gen", "llm2vec-gen-fused", "llm2vec-gen-fused@2", "llm2vec-gen-fused@4", "teacher"]
    assert check_names(["llm2vec-gen-fused@4", "llm2vec-gen-fused@4.0", "llm2vec-gen-fused@0"]) == ["llm2vec-gen-fused@0", "llm2vec-gen-fused@4"]


def test_unknown_systems_are_named_in_the_error():
    with pytest.raises(ValueError, match="unknown system.*bm25"):
        check_names(["baseline", "bm25"])
