"""Writing a :class:`ClusteringReport` for people: JSON, markdown, a PNG of maps and one HTML page.

Kept apart from the clustering so that a saved report can be redrawn without
the model, and so that matplotlib is only needed by those who draw.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import numpy as np

from ..errors import missing_extra
from .core import ClusteringReport
from .names import Cluster

__all__ = ["draw_maps", "html_report", "markdown_report", "plot_maps", "write_report"]


def write_report(report: ClusteringReport, folder: str | Path) -> dict[str, Path]:
    """Write ``clusters.json``, ``clusters.md``, ``clusters.png`` and ``clusters.html`` into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": folder / "clusters.json",
        "markdown": folder / "clusters.md",
        "png": folder / "clusters.png",
        "html": folder / "clusters.html",
    }
    paths["json"].write_text(json.dumps(report.to_dict(), indent=2, ensure_ascii=False), encoding="utf-8")
    paths["markdown"].write_text(markdown_report(report), encoding="utf-8")
    plot_maps(report, paths["png"])
    paths["html"].write_text(html_report(report, paths["png"].read_bytes()), encoding="utf-8")
    return paths


#: how a name's answer half was chosen, as a reader is told (see Cluster.answer_source)
NAMED_BY = {
    "agreement": "named by its members' agreed answer",
    "cluster": "members disagreed: named by the answer about the whole cluster",
    "none": "named by its words",
}


def markdown_report(report: ClusteringReport) -> str:
    """The metrics table and every cluster's name, size, top answers and distinctive words."""
    lines = [f"# {report.corpus}: {len(report.texts)} texts, {report.method}", "", report.metrics_table()]
    lines += ["", report.labels_note()]
    for result in report.results:
        lines += ["", f"## {result.instruction} (k = {result.k}, {k_reason(result.k_choice)})", ""]
        for cluster in sorted(result.clusters, key=lambda c: -c.size):
            answers = ", ".join(f"{answer} ({count})" for answer, count in cluster.answers) or "-"
            words = ", ".join(cluster.words) or "-"
            named = NAMED_BY[cluster.answer_source]
            note = f" Note: {cluster.note}." if cluster.note else ""
            size = f"{cluster.size} texts, {named}"
            lines.append(f"- **{cluster.name}** ({size}): answers {answers}; words {words}.{note}")
    return "\n".join(lines) + "\n"


def k_reason(choice: dict) -> str:
    """How k was chosen, in words: given, by silhouette, or by the answers (beside the silhouette's k)."""
    rule = choice.get("rule", "given")
    if rule == "given":
        return "k given"
    if rule == "silhouette":
        return "chosen by silhouette" + (
            f"; the answers were no evidence ({choice['answer_groups']} answer groups)"
            if choice.get("answer_groups") is not None
            else ""
        )
    return (
        f"chosen by agreement with {choice['answer_groups']} answer groups "
        f"covering {choice['coverage']:.0%} of the texts asked; "
        f"the silhouette alone: k = {choice['silhouette_k']}"
    )


def plot_maps(report: ClusteringReport, path: str | Path) -> Path:
    """One 2-D map per instruction, side by side, coloured by cluster and labelled by name."""
    import matplotlib.pyplot as plt

    figure = draw_maps(report)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(figure)
    return path


def draw_maps(report: ClusteringReport):  # noqa: ANN201  (a matplotlib Figure: matplotlib is optional)
    """The figure of :func:`plot_maps`; each legend sits below its map, never over its points."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise missing_extra("recipes", "matplotlib") from exc

    panels = len(report.results)
    rows = max((len(result.clusters) for result in report.results), default=1)
    figure, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 5.2 + 0.18 * rows), squeeze=False)
    colours = plt.get_cmap("tab10")
    for axis, result in zip(axes[0], report.results, strict=True):
        points = np.asarray(result.coordinates)
        assignments = np.asarray(result.assignments)
        for cluster in result.clusters:
            members = assignments == cluster.id
            axis.scatter(
                points[members, 0],
                points[members, 1],
                s=14,
                alpha=0.75,
                color=colours(cluster.id % 10),
                label=f"{_shorten(cluster.name, 44)} ({cluster.size})",
            )
        subtitle = ", ".join(f"{k} {v:.2f}" for k, v in result.metrics.items() if k != "silhouette")
        axis.set_title(f"{_shorten(result.instruction, 48)}\n{subtitle}", fontsize=10)
        axis.set_xticks([])
        axis.set_yticks([])
        # Below the axes, not inside them: "best" still covered points on dense maps.
        axis.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.02), frameon=False)
    figure.suptitle(f"{report.corpus}: {len(report.texts)} texts, one map per instruction", fontsize=12)
    figure.tight_layout()
    return figure


def _shorten(text: str, width: int) -> str:
    """One line of at most ``width`` characters: legends and titles must not overflow the map."""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def html_report(report: ClusteringReport, png: bytes) -> str:
    """A self-contained page: metrics, the maps (embedded), and each cluster's name and examples."""
    e = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>InBedder clusters: {e(report.corpus)}</title>",
        "<style>body{font-family:sans-serif;max-width:1200px;margin:auto;padding:1em}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px}"
        "td.num{text-align:right}.cluster{margin:0.6em 0}.example{color:#444;font-size:90%}</style>",
        "</head><body>",
        f"<h1>{e(report.corpus)}: the same {len(report.texts)} texts under "
        f"{len(report.results)} instructions</h1>",
        f"<p>model <code>{e(report.model)}</code>, fingerprint <code>{e(report.fingerprint)}</code>, "
        f"{e(report.method)} clustering.</p>",
        "<h2>Metrics</h2>",
        _html_metrics(report),
        f"<p>{e(report.labels_note())}</p>",
        f"<img alt='2-D maps, one per instruction' style='max-width:100%' "
        f"src='data:image/png;base64,{base64.b64encode(png).decode('ascii')}'>",
    ]
    for result in report.results:
        parts.append(f"<h2>{e(result.instruction)}</h2><p>k = {result.k}: {e(k_reason(result.k_choice))}</p>")
        parts += [_html_cluster(cluster) for cluster in sorted(result.clusters, key=lambda c: -c.size)]
    parts.append("</body></html>")
    return "\n".join(parts)


def _html_cluster(cluster: Cluster) -> str:
    """One cluster's name, size, answers, words and examples, escaped."""
    e = html.escape
    answers = ", ".join(f"{e(answer)} ({count})" for answer, count in cluster.answers)
    examples = "".join(f"<li class='example'>{e(_shorten(x, 300))}</li>" for x in cluster.examples)
    named = NAMED_BY[cluster.answer_source]
    note = f"<br>note: {e(cluster.note)}" if cluster.note else ""
    return (
        f"<div class='cluster'><b>{e(cluster.name)}</b> ({cluster.size} texts, {named}){note}"
        f"<br>answers: {answers or '-'}<br>distinctive words: {e(', '.join(cluster.words)) or '-'}"
        f"<ul>{examples}</ul></div>"
    )


def _html_metrics(report: ClusteringReport) -> str:
    """The metrics table as HTML, the same rows as :meth:`ClusteringReport.metrics_table`."""
    names = list(report.results[0].metrics) if report.results else []
    against = (report.labels_from or "labels given") if report.labels is not None else None
    header = "".join(f"<th>{html.escape(name)}</th>" for name in names)
    header += "<th>scored against</th>" if against else ""
    rows = "".join(
        f"<tr><td>{html.escape(r.instruction)}</td><td class='num'>{r.k}</td>"
        f"<td>{html.escape(r.k_choice.get('rule', 'given'))}</td>"
        + "".join(f"<td class='num'>{r.metrics[name]:.3f}</td>" for name in names)
        + (f"<td>{html.escape(against)}</td>" if against else "")
        + "</tr>"
        for r in report.results
    )
    return f"<table><tr><th>instruction</th><th>k</th><th>k chosen by</th>{header}</tr>{rows}</table>"
