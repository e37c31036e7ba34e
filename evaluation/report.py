"""Write the evaluation: ``eval.json`` (the issue's shape), ``eval.md`` (a table for the README) and PNG bar charts.

``eval.json``::

    {"date", "command", "seconds", "machine", "config", "data", "headline", "default_encoder", "goals", "notes",
     "systems": {NAME: {"retrieval": {"ndcg@10", "recall@10", "mrr@10"},
                        "retrieval_mixed": {...same, FAQ queries over the mixed safety corpus},
                        "safety": {"harmful@1", "harmful@5", "harmful@20", "harmful_share@5", "refusal@1", ...},
                        "speed": {"query_ms", "query_ms_max", "queries_per_s", "encode_docs_per_s", ...},
                        "decodability": {...} (llm2vec-gen only), "info": {...}}}}
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from .goals import goal_lines

COLUMNS: list[tuple[str, str, str]] = [  # (section, key, header)
    ("retrieval", "ndcg@10", "nDCG@10"),
    ("retrieval", "recall@10", "Recall@10"),
    ("retrieval", "mrr@10", "MRR@10"),
    ("retrieval_mixed", "ndcg@10", "nDCG@10 mixed"),
    ("safety", "harmful@1", "harmful@1 ↓"),
    ("safety", "harmful@5", "harmful@5 ↓"),
    ("safety", "harmful@20", "harmful@20 ↓"),
    ("safety", "harmful_share@5", "harmful share@5 ↓"),
    ("safety", "refusal@1", "refusal@1"),
    ("safety", "refusal@5", "refusal@5"),
    ("speed", "query_ms", "query ms"),
    ("speed", "encode_docs_per_s", "docs/s"),
]


def fmt(value: Any, key: str = "") -> str:
    """A table cell: 3 decimals for scores, 1 for milliseconds and rates, '–' for missing."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:,.1f}" if key.endswith(("_ms", "_per_s")) else f"{value:.3f}"


def markdown(report: dict[str, Any]) -> str:
    """The Markdown summary: date, command, data sizes, one row per system, headline ratios, goals, notes."""
    data, machine = report.get("data", {}), report.get("machine", {})
    cpu = f" of {machine['cpu']}" if machine.get("cpu") else ""
    dtype = f" ({machine['dtype']})" if machine.get("dtype") else ""
    lines = [
        "# gensearch evaluation",
        "",
        f"{report['date']} · `{report['command']}` · {report.get('seconds', 0) / 60:.1f} min on "
        f"{machine.get('threads', '?')} CPU threads{cpu} · backbone {machine.get('backbone', '?')}{dtype}",
        "",
    ]
    if data:
        lines += [
            f"Retrieval: {data.get('faq_queries', '?')} Python FAQ questions over {data.get('faq_passages', '?')} answers "
            f"(mixed: over {data.get('mixed_passages', '?')} passages). Safety: {data.get('safety_queries', '?')} AdvBench goals over "
            f"the mixed corpus ({data.get('labels', {})}).",
            "",
        ]
    present = [c for c in COLUMNS if any(c[1] in (s.get(c[0]) or {}) for s in report["systems"].values())]
    lines.append("| system | " + " | ".join(h for _, _, h in present) + " |")
    lines.append("|---|" + "---:|" * len(present))
    for name, result in report["systems"].items():
        cells = [fmt((result.get(section) or {}).get(key), key) for section, key, _ in present]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    headline = report.get("headline") or {}
    if headline:
        lines += ["", *[f"- {text}" for text in headline.get("text", [])]]
    if report.get("goals"):
        lines += ["", f"Goals, for the default encoder ({report.get('default_encoder', '?')}):", "", *[f"- {line}" for line in goal_lines(report["goals"])]]
    notes = report.get("notes") or []
    if notes:
        lines += ["", *[f"> {note}" for note in notes]]
    return "\n".join(lines) + "\n"


def bar_chart(path: Path, groups: list[str], series: dict[str, list[float]], title: str, ylabel: str, log: bool = False) -> Path:
    """Grouped bar chart (one group per metric, one bar per system) saved as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(6.0, 1.6 * len(groups) + 2), 4.4))
    width = 0.8 / max(len(series), 1)
    for i, (name, values) in enumerate(series.items()):
        xs = [g + (i - (len(series) - 1) / 2) * width for g in range(len(groups))]
        ax.bar(xs, [v if v is not None else 0 for v in values], width, label=name)
    ax.set_xticks(range(len(groups)), groups)
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    if log:
        ax.set_yscale("log")
    ax.legend(fontsize=8, ncols=min(len(series), 5), loc="upper center", bbox_to_anchor=(0.5, -0.1), frameon=False)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def charts(report: dict[str, Any], out_dir: Path, stem: str = "eval") -> list[Path]:
    """Retrieval, safety and speed bar charts for whatever sections the report holds."""
    specs = [
        ("retrieval", [("retrieval", "ndcg@10"), ("retrieval", "recall@10"), ("retrieval", "mrr@10"), ("retrieval_mixed", "ndcg@10")],
         ["nDCG@10", "Recall@10", "MRR@10", "nDCG@10 (mixed)"], "Python FAQ retrieval (higher is better)", "score", False),
        ("safety", [("safety", "harmful@1"), ("safety", "harmful@5"), ("safety", "harmful@20"), ("safety", "harmful_share@5")],
         ["harmful@1", "harmful@5", "harmful@20", "harmful share@5"], "AdvBench-IR-style safety (lower is safer)", "share of queries", False),
        ("speed", [("speed", "query_ms")], ["query latency"], "Query embedding latency, batch 1 (lower is faster)", "ms (log scale)", True),
    ]
    paths = []
    systems = report["systems"]
    for name, keys, labels, title, ylabel, log in specs:
        present = [(k, lab) for k, lab in zip(keys, labels) if any(k[1] in (s.get(k[0]) or {}) for s in systems.values())]
        if not present:
            continue
        series = {sys: [(res.get(sec) or {}).get(key) for (sec, key), _ in present] for sys, res in systems.items()}
        paths.append(bar_chart(out_dir / f"{stem}_{name}.png", [lab for _, lab in present], series, title, ylabel, log))
    return paths


def write_report(report: dict[str, Any], out_dir: Path, stem: str = "eval", examples: dict[str, Any] | None = None) -> list[Path]:
    """Write ``<stem>.json``, ``<stem>.md``, the charts and (if given) ``<stem>_examples.json``; returns the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{stem}.json", out_dir / f"{stem}.md"]
    paths[0].write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    paths[1].write_text(markdown(report))
    paths += charts(report, out_dir, stem)
    if examples is not None:
        paths.append(out_dir / f"{stem}_examples.json")
        paths[-1].write_text(json.dumps(examples, indent=2, ensure_ascii=False) + "\n")
    return paths
