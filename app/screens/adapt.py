"""Adapt page: `gensearch adapt` for teams that never open a terminal, with the same stages and the same report."""

from __future__ import annotations

import time

import streamlit as st

from app import resources, widgets

STAGES = ("questions", "features", "fit")

st.title("Adapt")
collection = widgets.current_collection()
settings = resources.settings()
st.caption("Teach search a collection's vocabulary from its own documents: the model writes the questions each sampled "
           "passage answers and learns to put each question on its passage. No labels; nothing leaves this machine; "
           "documents are not re-embedded. Only passages everyone may read are learned from. About 25 minutes per "
           "1,000 passages on a 2-core CPU; if the app stops, starting again goes on where it was.")

from app.adapt import adapt_collection, adapt_status, undo_adapt  # noqa: E402  (after the page header: imports are slow)

record = None
with widgets.guarded("reading the collection's adaptation"):
    record = adapt_status(settings, collection, client=resources.client())
if record:
    held = record["report"]["held_out"]
    st.success(f"**{collection}** is adapted ({time.strftime('%Y-%m-%d %H:%M', time.localtime(record['at']))}). Held-out generated "
               f"questions, MRR@10: {held['fused_before']['mrr@10']} → {held['fused_after']['mrr@10']} (teacher "
               f"{held['teacher']['mrr@10']}).", icon=":material/school:")
    st.caption(f"Adapter: `{record['adapter']}`")
else:
    st.info(f"**{collection}** uses the installed adapter.", icon=":material/school:")

shared = bool(settings.app_user_header)
if shared:
    st.warning("Adapting changes search for every user of the collection, so it is off in a shared deployment "
               "(GENSEARCH_APP_USER_HEADER is set): run `gensearch adapt` on the server instead.", icon=":material/lock:")
budget_left, budget_right = st.columns(2)
max_chunks = budget_left.number_input("Passages to learn from", min_value=30, max_value=20000, value=1000, step=100, disabled=shared)
minutes = budget_right.number_input("Time budget (minutes, 0: none)", min_value=0, max_value=24 * 60, value=0, step=10, disabled=shared,
                                    help="The model stops writing questions in time to finish; adapting again asks the passages left.")
left, right = st.columns(2)
start = left.button("Adapt", type="primary", disabled=shared)
undo = right.button("Undo", disabled=shared or not record)

if undo:
    with widgets.guarded("undoing the adaptation"):
        undo_adapt(settings, collection, client=resources.client())
        st.rerun()

if start:
    bars = {stage: st.progress(0.0, text=f"{stage}: waiting") for stage in STAGES}
    began = {stage: 0.0 for stage in STAGES}

    def on_stage(stage: str, done: int, total: int) -> None:
        began[stage] = began[stage] or time.perf_counter()
        elapsed = time.perf_counter() - began[stage]
        eta = f", about {elapsed / done * (total - done) / 60:.0f} min left" if done and done < total else ""
        bars[stage].progress(done / max(total, 1), text=f"{stage}: {done}/{total}{eta}")

    with widgets.guarded("the adaptation"):
        from training.adapt import AdaptConfig, AdaptError

        try:
            config = AdaptConfig(minutes=float(minutes) if minutes else None)
            report = adapt_collection(settings, collection, int(max_chunks), config, progress=False, on_stage=on_stage, client=resources.client())
        except AdaptError as exc:
            st.error(str(exc), icon=":material/error:")
        else:
            held = report["held_out"]
            st.success(f"Adapted: held-out generated questions, MRR@10 {held['fused_before']['mrr@10']} → {held['fused_after']['mrr@10']}.")
            st.write("Questions the model wrote, for example:")
            st.markdown("\n".join(f"- {q['question']}" for q in report["sample_questions"][:5]))
            if report.get("safety"):
                before, after = report["safety"]["before"], report["safety"]["after"]
                st.write(f"Safety, held-out harmful requests (harmful passage first / share of the top 5): "
                         f"{before['harmful_at_1']} / {before['harmful_share_at_5']} before, "
                         f"{after['harmful_at_1']} / {after['harmful_share_at_5']} after.")
            st.caption(f"Seconds per stage: {report['seconds']}")
