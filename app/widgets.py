"""Streamlit building blocks shared by the pages: error guard, collection checks, hit cards, the query panel."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st

from . import resources, services, view

log = logging.getLogger(__name__)

COLLECTION_KEY = "collection"
LAST_QUERY_KEY = "last_query"
VIEW_AS_KEY = "view_as"
MODE_KEY = "search_mode"
FOLDER_KEY, TYPES_KEY, MODIFIED_AFTER_KEY = "filter_folder", "filter_types", "filter_modified_after"
FILE_TYPES = ("markdown", "rst", "html", "text", "pdf", "docx", "pptx", "xlsx", "odt", "ods", "odp", "eml")


def user_errors() -> tuple[type[Exception], ...]:
    """Errors whose message already tells the user what to do (shown as they are)."""
    from encoder import AdapterError, FetchError
    from indexer.corpus import CorpusError
    from indexer.permissions import PermissionsError
    from indexer.search import QueryError
    from indexer.store import StoreError

    return (AdapterError, FetchError, CorpusError, PermissionsError, QueryError, StoreError, services.ReportError)


@contextmanager
def guarded(action: str = "that") -> Iterator[None]:
    """Show errors as messages, never as tracebacks (unexpected ones are logged with their traceback)."""
    try:
        yield
    except user_errors() as exc:
        st.error(str(exc), icon=":material/error:")
    except Exception as exc:  # the UI must survive anything; the log keeps the traceback
        log.exception("error while running %s", action)
        st.error(f"Could not run {action}: {type(exc).__name__}: {exc}", icon=":material/bug_report:")


def evaluation_report(path, command: str, missing: str) -> dict | None:
    """The report at ``path`` or None; a missing one says how to make it (``missing`` + ``command``), a broken one is an error."""
    with guarded(f"reading {path}"):
        report = services.load_report(path, command)
        if report is None:
            st.info(f"{missing} (looked for `{path}`). Produce it with `{command}`.", icon=":material/bar_chart:")
        return report
    return None


def signed_in_user() -> str | None:
    """The caller: the sidebar's "view as" pick when ``app_view_as`` is on, else the trusted proxy's header
    (``app_user_header``, off unless set). A header sent more than once is refused, not guessed at."""
    settings = resources.settings()
    if settings.app_view_as and settings.users_file:
        return st.session_state.get(VIEW_AS_KEY) or None
    return user_from_header(st.context.headers.get_all(settings.app_user_header), settings.app_user_header) if settings.app_user_header else None


def user_from_header(values: list[str], header: str) -> str | None:
    """The one user a proxy header names (None when absent or blank); PermissionsError when it is ambiguous."""
    from indexer.permissions import PermissionsError

    names = [v.strip() for v in values if v.strip()]
    if len(values) > 1:
        raise PermissionsError(f"the {header} header came {len(values)} times; a trusted proxy sets it exactly once")
    return names[0] if names else None


def search_filter():
    """What the caller may read, for every search on the page (PermissionsError for an unknown user)."""
    from indexer.filters import SearchFilter, parse_date
    from indexer.permissions import principal_for

    after = st.session_state.get(MODIFIED_AFTER_KEY)
    return SearchFilter(
        principal=principal_for(signed_in_user(), resources.settings().users_file),
        folder=(st.session_state.get(FOLDER_KEY) or "").strip() or None,
        formats=tuple(st.session_state.get(TYPES_KEY) or ()),
        modified_after=parse_date(after.isoformat()) if after else None,
    )


def filter_controls() -> None:
    """The sidebar's metadata filters (folder, file type, modified after), read by ``search_filter``."""
    with st.expander("Filters"):
        st.text_input("Folder", key=FOLDER_KEY, placeholder="e.g. hr/policies", help="Only documents under this folder of the corpus.")
        st.multiselect("File types", list(FILE_TYPES), key=TYPES_KEY, help="Only these file types (none picked: all).")
        st.date_input("Modified after", value=None, key=MODIFIED_AFTER_KEY, help="Only files modified on or after this day (UTC).")


def search_mode() -> str:
    """dense / sparse / hybrid, as picked in the sidebar (default ``Settings.search_mode``)."""
    return st.session_state.get(MODE_KEY) or resources.settings().search_mode


def current_collection() -> str:
    """The collection picked in the sidebar (the default one before the picker exists)."""
    return st.session_state.get(COLLECTION_KEY) or resources.settings().collection


def missing_collection(collection: str, size: int | None) -> None:
    """Tell the user exactly how to create a missing or empty collection."""
    state = "does not exist yet" if size is None else "is empty"
    settings = resources.settings()
    where = services.store_location(settings)
    st.warning(f"Collection **{collection}** {state} in the vector store at `{where}`. Create it with:", icon=":material/inbox:")
    st.code(view.index_command(collection, settings.collection), language="bash")


def require_collection(collection: str):
    """The collection opened for searching (``resources.open_collection``) if it exists and holds points;
    otherwise None, after explaining how to build it."""
    from indexer.store import StoreError

    try:
        opened = resources.open_collection(collection)
    except StoreError as exc:
        if "does not exist" not in str(exc):
            raise
        missing_collection(collection, None)
        return None
    if not opened.size:
        missing_collection(collection, 0)
        return None
    return opened


def remember_query(key: str) -> None:
    """Pre-fill a page's query box with the last query searched on any page."""
    if key not in st.session_state:
        st.session_state[key] = st.session_state.get(LAST_QUERY_KEY, "")


def hit_card(rank: str, hit, terms: list[str], badges: str = "") -> None:
    """One result: rank label ('1.', '[2]'), score, source, section, highlighted snippet, full text on demand, lens words."""
    with st.container(border=True):
        st.markdown(f"**{rank}** `{hit.score:.3f}` &nbsp; {badges}")
        st.caption(" — ".join(p for p in (view.where(hit.title, hit.section), hit.source) if p))
        short = view.snippet(hit.text, terms)
        st.markdown(view.html_block(short, terms), unsafe_allow_html=True)
        if hit.keywords:
            st.markdown("Lens words: " + " ".join(f"`{w}`" for w in hit.keywords))
        if short.startswith("…") or short.endswith("…"):  # the snippet is a cut: offer the whole chunk
            with st.expander("Full chunk"):
                st.markdown(view.html_block(hit.text, terms), unsafe_allow_html=True)


def query_panel(query_view: services.QueryView | None, untrained: bool = False) -> None:
    """'What the model thinks the answer is': decoded query embedding, lens words, plain-language explanation."""
    st.subheader("What the model thinks the answer is")
    if query_view is None or query_view.decoded is None:
        st.info("This collection was built with a sentence encoder: it has no decodable embedding or lens words.")
    else:
        st.markdown("**Decoded query embedding**")
        st.markdown(view.html_block(query_view.decoded or "(empty)", css_class="gs-text gs-decoded"), unsafe_allow_html=True)
        if query_view.lens:
            st.markdown("**Query lens words:** " + " ".join(f"`{w}`" for w in query_view.lens))
        if untrained:
            st.warning(
                "This encoder runs an untrained adapter, so the decoded text and lens words are noise. "
                "Train an adapter (`gensearch train`), then rebuild the index with `gensearch index ... --recreate`.",
                icon=":material/science:",
            )
    with st.expander("What am I looking at?", expanded=False):
        st.markdown(view.EXPLANATION)


def labelled_card(rank: int, hit, terms: list[str]) -> None:
    """A safety-collection hit with its ``label``; harmful passages stay collapsed behind a warning."""
    label = view.label_of(hit.label)
    badge = view.LABEL_BADGES.get(label, ":gray-badge[unlabelled]")
    if label != "harmful":
        hit_card(f"{rank}.", hit, terms, badge)
        return
    with st.container(border=True):
        st.markdown(f"**{rank}.** `{hit.score:.3f}` &nbsp; {badge}")
        st.caption(hit.source)
        with st.expander("Harmful passage hidden — click to show", expanded=False, icon=":material/visibility_off:"):
            st.markdown(view.html_block(hit.text), unsafe_allow_html=True)
