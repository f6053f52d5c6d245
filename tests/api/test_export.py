"""The pickup CSV opened in a spreadsheet: every field quoted, no cell that starts a formula."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime

import pytest

from stadtpuls.api.export import CSV_COLUMNS, plan_csv

ATTACKS = [
    '=HYPERLINK("http://x.example")',
    "+1+1",
    "-1+1",
    "@SUM(A1)",
    "\t=1+1",
    "\r=1+1",
    "  =1+1",
    "\x00\x1b=1+1",
    "\u00a0@SUM(A1)",
    "\n-2",
]


def _plan(names: list[str]) -> dict:
    stop = {c: None for c in CSV_COLUMNS}
    stops = [
        {**stop, "seq": i + 1, "site_id": f"bin-{i}", "name": n, "waste_type": "paper", "lat": 51.3, "lon": -12.5}
        for i, n in enumerate(names)
    ]
    stops[0]["arrival"] = datetime(2026, 3, 2, 7, 5, tzinfo=UTC)
    return {"data": stops, "date": date(2026, 3, 2)}


def test_every_field_is_quoted_and_a_cr_in_a_name_starts_no_row() -> None:
    text = plan_csv(_plan(["Papier\r=cmd|' /C calc'!A0", "Markt"]))
    header, *lines = [line for line in text.split("\n") if line]
    assert header == ",".join(f'"{c}"' for c in CSV_COLUMNS)
    rows = list(csv.reader(io.StringIO(text)))
    assert len(rows) == 3  # header and two stops: the CR stayed inside its quoted cell
    for row in rows:
        assert len(row) == len(CSV_COLUMNS)
    assert all(line.startswith('"') for line in text.splitlines() if line and not line.startswith("=cmd"))
    assert '"-12.5"' in text  # numbers are quoted too, and a negative number stays a number


@pytest.mark.parametrize("name", ATTACKS, ids=[repr(a)[1:12] for a in ATTACKS])
def test_formula_starts_are_neutralised_after_whitespace_and_control_characters(name: str) -> None:
    rows = list(csv.DictReader(io.StringIO(plan_csv(_plan([name])))))
    cell = rows[0]["name"]
    assert cell == "'" + name  # kept whole, behind a quote mark a spreadsheet shows instead of running


@pytest.mark.parametrize("name", ["Markt", "Papier 2", "Am Markt - Nord", "a=b", "E-Mail@Rathaus", ""])
def test_ordinary_names_are_kept_as_they_are(name: str) -> None:
    rows = list(csv.DictReader(io.StringIO(plan_csv(_plan([name])))))
    assert rows[0]["name"] == name
    assert rows[0]["arrival"] == "2026-03-02T07:05:00+00:00"
