"""Search page: top-k hits with highlighted query terms, and what the model thinks the answer is."""

from __future__ import annotations

import streamlit as st

from app import resources, services, view, widgets

st.title("Search")
collection = widgets.current_collection()
widgets.remember_query("search_query")
with st.form("search"):
    query = st.text_input("Query", key="search_query", placeholder="e.g. How do I reverse a list in Python?")
    k = st.slider("Results", 1, 20, 5)
    submitted = st.form_submit_button("Search", type="primary")

if submitted:
    st.session_state.pop("search_result", None)
    with widgets.guarded("the search"):
        opened = widgets.require_collection(collection)
        if opened:
            with st.spinner("Searching…"):
                result = opened.search(query, k, widgets.search_filter(), widgets.search_mode(), resources.settings().safety)
            st.session_state[widgets.LAST_QUERY_KEY] = query
            st.session_state.search_result = {
                "query": query,
                "collection": collection,
                "hits": result.hits,
                "safety": result.safety,
                "ms": 1000 * (result.encode_seconds + result.qdrant_seconds),
                "untrained": services.is_untrained(opened.encoder, resources.settings()),
                "encoder": opened.encoder,
                "states": result.states,  # the search's pass: decoding and the lens need no second one
                "synced": opened.synced,
                "explain": None,  # filled below, after the hits are on screen
            }

shown = st.session_state.get("search_result")
if shown and shown["collection"] == collection:
    terms = view.query_terms(shown["query"])
    left, right = st.columns([3, 2], gap="large")
    with left:
        st.caption(f"{len(shown['hits'])} hits from **{collection}** in {shown['ms']:.0f} ms" + view.synced_note(shown.get("synced")))
        decision = shown.get("safety")
        if decision is not None and decision.harmful:
            st.warning(f"Safety: {decision.reason}.", icon="🛡️")
        if not shown["hits"]:
            st.info("No hits.")
        for rank, hit in enumerate(shown["hits"], start=1):
            widgets.hit_card(f"{rank}.", hit, terms)
    with right:
        if shown["explain"] is None:
            with st.spinner("Decoding the query embedding…"), widgets.guarded("decoding the query embedding"):
                shown["explain"] = services.explain_query(shown["encoder"], shown["query"], states=shown["states"])
        if shown["explain"] is not None:
            widgets.query_panel(shown["explain"], shown["untrained"])
elif not submitted:
    st.caption(
        "Type a question and press Search. The hits are the passages whose embedding is closest to the "
        "embedding of the answer the model would give."
    )
