"""The gensearch Streamlit app (run it with `gensearch app`): Search, Compare, Safety, Ask and Adapt pages.

This script runs on every interaction: it sets up the page, opens the store (once per process), puts
the collection picker in the sidebar and hands over to the page the user picked.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from app import resources, services, view, widgets

PAGES = Path(__file__).parent / "screens"  # not "pages/": that name switches on Streamlit's legacy multipage mode

st.set_page_config(page_title="gensearch", page_icon=":material/search:", layout="wide")
st.html(view.CSS)

navigation = st.navigation(
    [
        st.Page(PAGES / "search.py", title="Search", icon=":material/search:", default=True),
        st.Page(PAGES / "compare.py", title="Compare", icon=":material/compare_arrows:"),
        st.Page(PAGES / "safety.py", title="Safety", icon=":material/shield:"),
        st.Page(PAGES / "ask.py", title="Ask", icon=":material/forum:"),
        st.Page(PAGES / "adapt.py", title="Adapt", icon=":material/school:"),
    ],
    position="top",
)

with st.sidebar:
    st.markdown("### gensearch")
    st.caption("Search that embeds what a language model *would answer*, not what you typed (LLM2Vec-Gen).")
    settings = resources.settings()
    names: list[str] = []
    with widgets.guarded("opening the vector store"):
        names = resources.collection_names()
    default = settings.collection
    options = names if default in names else [default, *names]
    st.selectbox("Collection", options, index=options.index(default), key=widgets.COLLECTION_KEY,
                 help="Qdrant collection to search. Build more with `gensearch index`.")
    st.caption(f"Store: `{services.store_location(settings)}`")
    modes = ["auto", "dense", "sparse", "hybrid"]
    st.selectbox("Retrieval", modes, index=modes.index(settings.search_mode), key=widgets.MODE_KEY,
                 help="auto: hybrid where the collection has keyword vectors, else dense; dense: the encoder's embeddings; sparse: BM25 keywords (exact identifiers); hybrid: both, fused by rank.")
    widgets.filter_controls()
    if settings.app_view_as and settings.users_file:
        with widgets.guarded("reading the users file"):
            users = services.user_names(settings.users_file)
            st.selectbox("View as", ["", *users], key=widgets.VIEW_AS_KEY, format_func=lambda u: u or "(anonymous)",
                         help="Local testing only (GENSEARCH_APP_VIEW_AS): search as any user of the users file.")
    user = None
    with widgets.guarded("reading the signed-in user"):
        user = widgets.signed_in_user()
    if user:
        st.caption(f"Signed in as **{user}**")
    else:
        how = f"a trusted reverse proxy sets `{settings.app_user_header}`" if settings.app_user_header else "set GENSEARCH_APP_USER_HEADER behind a proxy"
        st.caption(f"Not signed in: public documents only ({how}).")

navigation.run()
