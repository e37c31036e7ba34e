"""Compare page: the same query through LLM2Vec-Gen and the baseline encoder, side by side, overlap marked."""

from __future__ import annotations

import streamlit as st

from app import view, widgets

st.title("Compare with a classic sentence encoder")
collection = widgets.current_collection()
baseline = view.baseline_collection(collection)
if collection == baseline:
    st.info(f"**{collection}** is already a baseline collection: pick its LLM2Vec-Gen twin in the sidebar.")
    st.stop()
st.caption(
    f"Left: **{collection}** (LLM2Vec-Gen, embeds the answer the model would give). Right: **{baseline}** "
    "(all-MiniLM-L6-v2, embeds the words you typed). Hits from the same section of the same file are marked "
    "on both sides."
)
widgets.remember_query("compare_query")
with st.form("compare"):
    query = st.text_input("Query", key="compare_query", placeholder="e.g. Why is my program so slow?")
    k = st.slider("Results per side", 1, 20, 5)
    submitted = st.form_submit_button("Compare", type="primary")

if submitted:
    st.session_state.pop("compare_result", None)
    with widgets.guarded("the comparison"):
        ready = [widgets.require_collection(name) for name in (collection, baseline)]
        if all(ready):
            with st.spinner("Searching both collections…"):
                ours, theirs = (opened.search(query, k, widgets.search_filter(), widgets.search_mode()).hits for opened in ready)
            st.session_state[widgets.LAST_QUERY_KEY] = query
            st.session_state.compare_result = {"query": query, "collection": collection, "ours": ours, "theirs": theirs}

shown = st.session_state.get("compare_result")
if shown and shown["collection"] == collection:
    terms = view.query_terms(shown["query"])
    ours, theirs = shown["ours"], shown["theirs"]
    both = view.overlap(ours, theirs)
    st.metric("Sections in both result lists", f"{len(both)} of {min(len(ours), len(theirs))}")
    columns = st.columns(2, gap="large")
    for column, title, hits, other, other_name in (
        (columns[0], "LLM2Vec-Gen", ours, theirs, "baseline"),
        (columns[1], "Baseline (all-MiniLM-L6-v2)", theirs, ours, "LLM2Vec-Gen"),
    ):
        with column:
            st.subheader(title)
            for rank, hit in enumerate(hits, start=1):
                key = view.overlap_key(hit)
                badge = f":violet-badge[in both · #{view.rank_in(other, key)} in {other_name}]" if key in both else ""
                widgets.hit_card(f"{rank}.", hit, terms, badge)
