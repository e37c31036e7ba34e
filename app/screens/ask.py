"""Ask page: a RAG answer from the local backbone, citing the retrieved chunks."""

from __future__ import annotations

import streamlit as st

from app import resources, view, widgets
from indexer.rag import ask_stream

st.title("Ask your documents")
collection = widgets.current_collection()
st.caption(
    f"The top chunks of **{collection}** are given to the local language model (the same frozen backbone "
    "that makes the embeddings), which answers and cites them as [1], [2], … Answers take a while on a CPU."
)
widgets.remember_query("ask_query")
with st.form("ask"):
    question = st.text_input("Question", key="ask_query", placeholder="e.g. How do I copy a list?")
    left, right = st.columns(2)
    k = left.slider("Chunks given to the model", 1, 8, 3)
    max_new_tokens = right.slider("Longest answer (tokens)", 16, 512, 160, step=16)
    submitted = st.form_submit_button("Ask", type="primary")

streamed = False
if submitted:
    st.session_state.pop("ask_result", None)
    with widgets.guarded("the answer"):
        opened = widgets.require_collection(collection)
        if opened:
            with st.spinner("Retrieving…"):
                stream = ask_stream(resources.client(), opened.encoder, collection, question, k, max_new_tokens, widgets.search_filter(),
                                    mode=widgets.search_mode(), safety=resources.settings().safety, settings=resources.settings())
            st.subheader("Answer")
            st.write_stream(stream)  # as the model writes it
            answer = stream.answer()
            streamed = True
            st.session_state[widgets.LAST_QUERY_KEY] = question
            st.session_state.ask_result = {"collection": collection, "answer": answer}

shown = st.session_state.get("ask_result")
if shown and shown["collection"] == collection:
    answer = shown["answer"]
    if not streamed:  # shown again on later reruns; the run that wrote it streamed it above
        st.subheader("Answer")
        st.markdown(answer.answer or "_(the model wrote nothing)_")
    st.subheader("Sources")
    terms = view.query_terms(answer.question)
    for c in answer.citations:
        badge = ":green-badge[cited]" if c.cited else ":gray-badge[not cited]"
        widgets.hit_card(f"[{c.n}]", c, terms, badge)
