"""The terminal's figure tables (analysis/reports/terminal.py): readable in 80 columns, nothing
hidden behind an ellipsis, nothing that says more than the rows do."""

from __future__ import annotations

from rich.console import Console

from analysis.reports.terminal import _rows_table


def _text(name: str, rows: list[dict], width: int = 80) -> str:
    console = Console(record=True, width=width)
    console.print(_rows_table(name, rows))
    return console.export_text()


def test_counts_that_never_fired_are_named_once_and_yes_no_columns_are_kept():
    rows = [
        {"target": "10.0.1.10:8000", "requests": 1234, "timeout_kill": 0, "sent": False},
        {"target": "10.0.2.20:8000", "requests": 99, "timeout_kill": 0, "sent": False},
    ]
    text = _text("per target", rows)
    assert "0 in every row: killed" in text and "killed ┃" not in text
    assert "sent" in text and "False" in text  # a yes/no is not a count of 0
    assert "1,234" in text and "10.0.2.20:8000" in text


def test_urls_of_one_origin_show_their_paths_and_minutes_of_one_day_their_time():
    rows = [
        {"minute": "2026-11-20 09:20", "url": "https://api.example.com:443/a/b", "alb_5xx": 3},
        {"minute": "2026-11-20 09:21", "url": "https://api.example.com:443/", "alb_5xx": None},
    ]
    text = _text("per URL", rows)
    flat = "".join(text.split())  # the title wraps to the table's width
    assert "perURL(https://api.example.com:443,2026-11-20UTC)" in flat
    assert "│ 09:20 " in text and "│ /a/b " in text and "│ / " in text
    assert "- │" in text and "None" not in text  # not measured: '-'
    # two origins: the URLs stay whole, the title names none
    rows[1]["url"] = "https://other.example.com/x"
    text = _text("per URL", rows, width=120)
    assert "https://other.example.com/x" in text and "https://api.example.com:443/a/b" in text
    assert "(https://" not in "".join(text.split())
