"""No code or data under src/ names a row of the bundled reference table by its id.

Predictions and catalog numbers must come from a row's columns (category, metric, model,
gpu, ...), and citations must name the row's primary source (its ``source`` column), never
the id: ids are labels of ``src/ddlsim/data/published.csv`` and may be renumbered.
Tests may use ids; ``src/`` may not.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PUBLISHED = SRC / "ddlsim" / "data" / "published.csv"
TEXT_SUFFIXES = {".py", ".json", ".yaml", ".yml", ".md", ".csv", ".txt", ".toml", ".cfg",
                 ".ini", ".rst"}
PREFIX = re.compile(r"^[A-Z]+-[A-Z0-9]+")


def _tokens() -> set[str]:
    """Every id of published.csv and every id prefix (``^[A-Z]+-[A-Z0-9]+``)."""
    with PUBLISHED.open(newline="") as f:
        ids = {row["id"].strip() for row in csv.DictReader(f) if row["id"].strip()}
    prefixes = {m.group(0) for i in ids if (m := PREFIX.match(i))}
    return ids | prefixes


def _pattern(tokens: set[str]) -> re.Pattern[str]:
    # Longest first, so a full id wins over its prefix. A token must not continue a word on
    # its left (no letter, digit, "_" or "-" before it) nor on its right (no letter, digit or
    # "_" after it): "COL-1" does not match inside "COL-12", while the prefix "HW-V100" does
    # match in "HW-V100-02" (a "-" may follow).
    alternatives = "|".join(re.escape(t) for t in sorted(tokens, key=len, reverse=True))
    return re.compile(rf"(?<![A-Za-z0-9_\-])({alternatives})(?![A-Za-z0-9_])")


def _src_files() -> list[Path]:
    return sorted(p for p in SRC.rglob("*")
                  if p.is_file() and p.suffix in TEXT_SUFFIXES and p != PUBLISHED
                  and "__pycache__" not in p.parts and ".egg-info" not in str(p))


def test_the_pattern_matches_whole_tokens_only():
    pattern = _pattern({"COL-1", "HW-V100", "HW-V100-02"})
    assert [m.group(1) for m in pattern.finditer("see HW-V100-02, COL-1.")] == ["HW-V100-02",
                                                                              "COL-1"]
    assert pattern.search("HW-V100-03").group(1) == "HW-V100"
    assert not pattern.search("COL-12") and not pattern.search("XCOL-1") \
        and not pattern.search("COL-1b")


def test_the_reference_table_has_ids():
    tokens = _tokens()
    assert len(tokens) > 50 and any(PREFIX.fullmatch(t) for t in tokens)


def test_no_file_under_src_names_a_published_row_id():
    pattern = _pattern(_tokens())
    hits = []
    for path in _src_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        for lineno, line in enumerate(text.splitlines(), start=1):
            for m in pattern.finditer(line):
                hits.append(f"{path.relative_to(SRC.parent)}:{lineno}: {m.group(1)}")
    assert not hits, (f"{len(hits)} published.csv row ids under src/ (cite the row's primary "
                      "source and select rows by their columns instead):\n" + "\n".join(hits))
