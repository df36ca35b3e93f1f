"""Reports: metrics.json, report.md, a self-contained report.html (no external URL) and a PNG."""

from __future__ import annotations

import base64
import html
import json
import os
from pathlib import Path

HEADLINE = {
    "json": [
        ("parse_rate", "parse rate"),
        ("field_accuracy", "field accuracy"),
        ("record_exact", "record exact"),
        ("f1", "micro F1"),
        ("item_f1", "entity F1"),  # only when the answers have list fields (NER)
    ],
    "text": [("exact_match", "exact match"), ("char_f1", "char F1"), ("rouge_l", "ROUGE-L")],
}


def write_predictions(path: str | Path, rows: list[dict]) -> None:
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
    os.replace(tmp, path)


def _task(runs: dict[str, dict]) -> str:
    return next(iter(runs.values())).get("task", "json")


def _table_rows(runs: dict[str, dict]) -> list[tuple[str, list[float]]]:
    rows = [
        (label, [m.get(key, 0.0) for m in runs.values()])
        for key, label in HEADLINE[_task(runs)]
        if any(key in m for m in runs.values())
    ]
    if _task(runs) == "json":
        fields = list(next(iter(runs.values()))["per_field"])
        rows += [
            (f"  {f}", [m["per_field"].get(f, {}).get("accuracy", 0.0) for m in runs.values()])
            for f in fields
        ]
    return rows


def format_table(runs: dict[str, dict]) -> str:
    """Terminal table: one column per model, plus the change when there are two or more."""
    names = list(runs)
    delta = len(names) > 1
    width = max(14, *(len(n) for n in names))
    head = (
        f"{'metric':<18}"
        + "".join(f"{n:>{width + 2}}" for n in names)
        + (f"{'delta':>10}" if delta else "")
    )
    lines = [head, "-" * len(head)]
    for label, values in _table_rows(runs):
        line = f"{label:<18}" + "".join(f"{v:>{width + 2}.3f}" for v in values)
        if delta:
            line += f"{values[-1] - values[0]:>+10.3f}"
        lines.append(line)
    return "\n".join(lines)


def _markdown(runs: dict[str, dict], title: str) -> str:
    names = list(runs)
    out = [
        f"# {title}",
        "",
        "| metric | " + " | ".join(names) + " |",
        "|---" * (len(names) + 1) + "|",
    ]
    for label, values in _table_rows(runs):
        out.append(f"| {label.strip()} | " + " | ".join(f"{v:.3f}" for v in values) + " |")
    if _task(runs) == "json":
        out += [
            "",
            "## Per field (" + names[-1] + ")",
            "",
            "| field | scorer | accuracy | precision | recall | F1 | mean similarity | support |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for f, m in runs[names[-1]]["per_field"].items():
            out.append(
                f"| {f} | {m['scorer']} | {m['accuracy']:.3f} | {m['precision']:.3f} | "
                f"{m['recall']:.3f} | {m['f1']:.3f} | {m['mean_similarity']:.3f} | {m['support']} |"
            )
    return "\n".join(out) + "\n"


def _chart(runs: dict[str, dict], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if _task(runs) == "json":
        labels = list(next(iter(runs.values()))["per_field"])
        series = {
            n: [m["per_field"].get(f, {}).get("accuracy", 0) for f in labels]
            for n, m in runs.items()
        }
    else:
        labels = [label for _, label in HEADLINE["text"]]
        series = {n: [m[k] for k, _ in HEADLINE["text"]] for n, m in runs.items()}
    fig, ax = plt.subplots(figsize=(max(5, 1.4 * len(labels) + 2), 3.5), dpi=100)
    width = 0.8 / max(1, len(series))
    for i, (name, values) in enumerate(series.items()):
        xs = [x + i * width for x in range(len(labels))]
        ax.bar(xs, values, width, label=name)
    ax.set_xticks([x + width * (len(series) - 1) / 2 for x in range(len(labels))], labels)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("accuracy" if _task(runs) == "json" else "score")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


CSS = """body{font-family:system-ui,'Noto Sans CJK SC','PingFang SC','Microsoft YaHei',sans-serif;margin:2em;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f3f3f3}.ok{background:#e6f6e6}.bad{background:#fbe3e3}.num{text-align:right}
pre{white-space:pre-wrap;margin:0;font-family:inherit}.ex{border:1px solid #ddd;padding:1em;margin:1em 0;border-radius:6px}
mark{background:#fff3a0;border-bottom:2px solid #e0b000}"""


def _worst(runs: dict[str, dict], predictions: dict[str, list[dict]], limit: int = 10) -> list[int]:
    last = list(runs)[-1]
    rows = predictions[last]
    if _task(runs) == "json":
        wrong = [i for i, r in enumerate(rows) if not r.get("record_correct")]
        return sorted(wrong, key=lambda i: rows[i].get("correct_fields", 0))[:limit]
    return sorted(range(len(rows)), key=lambda i: rows[i].get("rouge_l", 0))[:limit]


def _highlighted(text: str, spans: dict) -> str:
    """The input as HTML, each verbatim value's place marked (title = its field)."""
    marks = []
    for field, found in spans.items():
        places = found if found and isinstance(found[0], list) else [found]
        marks += [(start, end, field) for start, end in filter(None, places)]
    out, at = [], 0
    for start, end, field in sorted(marks):
        if start < at:  # overlaps the mark before: keep the first
            continue
        out.append(html.escape(text[at:start]))
        out.append(f"<mark title='{html.escape(field)}'>{html.escape(text[start:end])}</mark>")
        at = end
    out.append(html.escape(text[at:]))
    return "".join(out)


def _html(
    runs: dict[str, dict], predictions: dict[str, list[dict]], title: str, chart: Path
) -> str:
    e = html.escape
    names = list(runs)
    png = base64.b64encode(chart.read_bytes()).decode()
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{e(title)}</title>",
        f"<style>{CSS}</style></head><body><h1>{e(title)}</h1>",
        "<table><tr><th>metric</th>" + "".join(f"<th>{e(n)}</th>" for n in names) + "</tr>",
    ]
    for label, values in _table_rows(runs):
        parts.append(
            f"<tr><td>{e(label.strip())}</td>"
            + "".join(f"<td class='num'>{v:.3f}</td>" for v in values)
            + "</tr>"
        )
    parts.append("</table>")
    parts.append(f"<img alt='per-field accuracy' src='data:image/png;base64,{png}'>")
    worst = _worst(runs, predictions)
    parts.append(f"<h2>Worst examples ({e(names[-1])})</h2>")
    if not worst:
        parts.append("<p>None: every record is right.</p>")
    for i in worst:
        row = predictions[names[-1]][i]
        parts.append(
            f"<div class='ex'><b>{e(str(row.get('source', i)))}</b>"
            f"<pre>{_highlighted(str(row.get('input', '')), row.get('spans') or {})}</pre>"
        )
        if _task(runs) == "json":
            fields = list(runs[names[-1]]["per_field"])
            parts.append(
                "<table><tr><th>field</th><th>reference</th>"
                + "".join(f"<th>{e(n)}</th>" for n in names)
                + "</tr>"
            )
            for f in fields:
                ref = row.get("fields", {}).get(f, {}).get("ref")
                cells = []
                for n in names:
                    v = predictions[n][i].get("fields", {}).get(f, {})
                    shown = (
                        v.get("pred")
                        if predictions[n][i].get("parsed") is not None
                        else "(unparsable)"
                    )
                    cells.append(
                        f"<td class='{'ok' if v.get('correct') else 'bad'}'>{e(json.dumps(shown, ensure_ascii=False))}</td>"
                    )
                parts.append(
                    f"<tr><td>{e(f)}</td><td>{e(json.dumps(ref, ensure_ascii=False))}</td>{''.join(cells)}</tr>"
                )
            parts.append("</table>")
            for n in names:
                if predictions[n][i].get("parsed") is None:
                    parts.append(
                        f"<p>{e(n)} raw answer:</p><pre class='bad'>{e(str(predictions[n][i].get('prediction', '')))}</pre>"
                    )
        else:
            parts.append(
                f"<p>reference</p><pre class='ok'>{e(str(row.get('reference', '')))}</pre>"
            )
            for n in names:
                parts.append(
                    f"<p>{e(n)} (ROUGE-L {predictions[n][i].get('rouge_l', 0):.2f})</p>"
                    f"<pre>{e(str(predictions[n][i].get('prediction', '')))}</pre>"
                )
        parts.append("</div>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(
    out_dir: str | Path, runs: dict[str, dict], predictions: dict[str, list[dict]], title: str
) -> dict[str, Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    slim = {n: {k: v for k, v in m.items() if k != "per_record"} for n, m in runs.items()}
    paths = {
        "metrics": out / "metrics.json",
        "markdown": out / "report.md",
        "html": out / "report.html",
        "chart": out / "per_field.png",
    }
    paths["metrics"].write_text(json.dumps(slim, indent=2, ensure_ascii=False))
    paths["markdown"].write_text(_markdown(runs, title), encoding="utf-8")
    _chart(runs, paths["chart"])
    paths["html"].write_text(_html(runs, predictions, title, paths["chart"]), encoding="utf-8")
    return paths
