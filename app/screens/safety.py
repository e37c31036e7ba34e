"""Safety page: harmful@k from the evaluation report, and harmful queries tried live on the mixed collection."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app import resources, services, view, widgets
from indexer.safety import search_labelled

CUSTOM = "Type your own…"
TOP_K = 5

st.title("Safety: what comes back for harmful queries?")
st.markdown(
    "LLM2Vec-Gen embeds the answer the model *would give*. For a harmful request an aligned model would "
    "refuse, so the query's embedding sits near refusals rather than near harmful how-tos. A classic encoder "
    "embeds the request's words and happily finds passages that match them."
)

st.header("As users search")
settings = resources.settings()
product = widgets.evaluation_report(services.product_report_path(settings), services.PRODUCT_EVAL_COMMAND, "No report yet")
if product:
    st.caption(
        "Held-out harmful requests (sources and phrasings we never trained or tuned on) searched through the product's own "
        "search path over a mixed, chunked corpus: harmful@1 and harmful share@5 per chunk — lower is safer; *routed*: the "
        f"share the refusal gate sent to LLM2Vec-Gen's own vector (pulled towards refusals). Run of {product.get('date', 'unknown date')}: `{product.get('command', '?')}`"
    )
    st.dataframe(pd.DataFrame(view.product_safety_table(product)), hide_index=True)

st.header("Passage-level diagnostic (AdvBench-IR style)")
report = widgets.evaluation_report(services.report_path(settings), services.EVAL_COMMAND, "No evaluation report yet")
rows = view.safety_rows(report or {})
if report is not None and not rows:
    st.info("The evaluation report has no safety results yet.")
if rows:
    st.caption(
        f"Share of the harmful queries with at least one harmful passage in the top k — lower is safer. "
        f"Run of {report.get('date', 'unknown date')}: `{report.get('command', '?')}`"
    )
    st.bar_chart(pd.DataFrame(rows), x="metric", y="value", color="system", stack=False, x_label="", y_label="harmful@k")
    st.dataframe(pd.DataFrame(view.safety_table(report)), hide_index=True)

st.header("Try it live")
collection = view.SAFETY_COLLECTION
baseline = view.baseline_collection(collection)
st.caption(
    f"**{collection}** mixes harmless documents with harmful passages and refusals, each labelled. "
    f"The same query goes through LLM2Vec-Gen (**{collection}**) and the baseline encoder (**{baseline}**); "
    f"top {TOP_K} each."
)
with st.form("safety"):
    example = st.selectbox("Example query", [*view.SAFETY_EXAMPLES, CUSTOM], key="safety_example")
    custom = st.text_input("Your own query (used when “Type your own…” is selected)")
    submitted = st.form_submit_button("Search both", type="primary")

if submitted:
    st.session_state.pop("safety_result", None)
    query = custom if example == CUSTOM else example
    with widgets.guarded("the safety search"):
        ready = [widgets.require_collection(name) for name in (collection, baseline)]
        if all(ready):
            client = resources.client()
            encoder = ready[0].encoder
            with st.spinner("Searching both collections…"):
                ours = search_labelled(client, encoder, collection, query, TOP_K)
                theirs = search_labelled(client, ready[1].encoder, baseline, query, TOP_K)
            with st.spinner("Decoding the query embedding…"):
                explain = services.explain_query(encoder, query)
            st.session_state.safety_result = {
                "query": query, "ours": ours, "theirs": theirs, "explain": explain, "untrained": services.is_untrained(encoder, resources.settings())
            }

shown = st.session_state.get("safety_result")
if shown:
    terms = view.query_terms(shown["query"])
    sides = (("LLM2Vec-Gen", shown["ours"]), ("Baseline (all-MiniLM-L6-v2)", shown["theirs"]))
    counts = {title: view.label_counts(view.label_of(h.label) for h in hits) for title, hits in sides}
    for column, (title, _hits) in zip(st.columns(2), sides):
        column.metric(f"Harmful passages in the {title} top {TOP_K}", counts[title]["harmful"])
    widgets.query_panel(shown["explain"], shown["untrained"])
    if any(c["harmful"] for c in counts.values()):
        st.warning(view.HARMFUL_WARNING, icon=":material/warning:")
    for column, (title, hits) in zip(st.columns(2, gap="large"), sides):
        with column:
            st.subheader(title)
            st.markdown(" · ".join(f"{view.LABEL_BADGES.get(k, k)} {n}" for k, n in counts[title].items()))
            for rank, h in enumerate(hits, start=1):
                widgets.labelled_card(rank, h, terms)
