"""The report: files exist, both models shown, offline-safe, user text escaped."""

from __future__ import annotations

import json

from slmtune.evaluate.metrics import score
from slmtune.evaluate.report import format_table, write_report


def _rows(refs, preds, metrics):
    return [
        {
            "source": f"t:{i}",
            "input": "<script>alert(1)</script>投诉",
            "reference": r,
            "prediction": p,
            **v,
        }
        for i, (r, p, v) in enumerate(zip(refs, preds, metrics["per_record"], strict=True))
    ]


def test_report_files_and_content(tmp_path):
    refs = [
        json.dumps({"name": "张三", "email": "a@b.c"}),
        json.dumps({"name": "李四", "email": None}),
    ]
    base_preds = ["blah", "blah"]
    tuned_preds = [refs[0], json.dumps({"name": "李", "email": None})]
    runs = {"base": score(refs, base_preds), "fine-tuned": score(refs, tuned_preds)}
    rows = {
        "base": _rows(refs, base_preds, runs["base"]),
        "fine-tuned": _rows(refs, tuned_preds, runs["fine-tuned"]),
    }
    paths = write_report(tmp_path, runs, rows, title="demo <eval>")
    for key in ("metrics", "markdown", "html", "chart"):
        assert paths[key].is_file()
    page = paths["html"].read_text()
    assert "http://" not in page and "https://" not in page
    assert "base" in page and "fine-tuned" in page
    assert "<script>alert" not in page and "&lt;script&gt;" in page
    assert "data:image/png;base64," in page
    metrics = json.loads(paths["metrics"].read_text())
    assert metrics["fine-tuned"]["field_accuracy"] == 0.75 and "per_record" not in metrics["base"]
    table = format_table(runs)
    assert "field accuracy" in table and "+0.750" in table
    assert "| field accuracy | 0.000 | 0.750 |" in paths["markdown"].read_text()


def test_verbatim_values_are_marked_in_the_input():
    from slmtune.evaluate.report import _highlighted

    text = "<b>张三</b>去北京和上海"
    spans = {"name": [3, 5], "places": [[10, 12], [13, 15]], "email": None}
    page = _highlighted(text, spans)
    assert page == (
        "&lt;b&gt;<mark title='name'>张三</mark>&lt;/b&gt;去"
        "<mark title='places'>北京</mark>和<mark title='places'>上海</mark>"
    )


def test_entity_f1_is_in_the_table_only_for_list_answers():
    refs = [json.dumps({"name": ["张三", "李四"], "place": ["北京"]})]
    preds = [json.dumps({"name": ["张三"], "place": ["北京", "上海"]})]
    table = format_table({"fine-tuned": score(refs, preds)})
    # 2 of 3 gold entities found, 2 of 3 predicted right: P = R = F1 = 0.667
    assert "entity F1" in table and "0.667" in table
    flat = [json.dumps({"name": "张三"})]
    assert "entity F1" not in format_table({"fine-tuned": score(flat, flat)})
