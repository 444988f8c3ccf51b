"""The summary at the top of BENCHMARKS.md: every row of every section's table in one table, with
the section it comes from and the date that section was measured, and how many rows meet their
target. Run by `bench/run --all` after every benchmark, or alone (`python3 bench/summary.py`)
to rebuild it from the sections as they are.

A row meets its target as `verdict` reads it from the row's "compared with"; rows with no
target are figures with nothing to meet.
"""

import re

from sections import machine, replace_section

SUMMARY = "summary"


def sections(text):
    """(name, body) of each `<!-- name -->` ... `<!-- /name -->` section but the summary."""
    for match in re.finditer(r"<!-- ([a-z]+) -->\n(.*?)<!-- /\1 -->", text, re.S):
        if match.group(1) != SUMMARY:
            yield match.group(1), match.group(2)


def heading_and_date(body):
    heading = next((line[3:].strip() for line in body.splitlines() if line.startswith("## ")), "")
    date = re.search(r"\b(\d{4}-\d{2}-\d{2})\b", body)
    return heading, date.group(1) if date else ""


def rows(body):
    """The rows of the section's first table (benchmark, dataset, figure, compared with, ratio)."""
    out = []
    for line in body.splitlines():
        if not line.startswith("| ") or line.startswith("| benchmark") or line.startswith("|---"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if len(cells) == 5:
            out.append(cells)
    return out


def verdict(cells):
    """'yes', 'no' or '—' (a figure with nothing to meet), read from what the row is compared
    with: "≥ 50%" of a ceiling (ratio 0.50 or more), "≤ 3×" a comparison (ratio 3 or less), a
    plain target (ratio below 1); a target set for another backend is not this row's."""
    compared, ratio = cells[3], cells[4]
    try:
        value = float(ratio)
    except ValueError:
        return "—"
    if "target" not in compared or "set for" in compared:
        return "—"
    if "≥ 50%" in compared:
        return "yes" if value >= 0.5 else "no"
    if "≤ 3×" in compared:
        return "yes" if value <= 3 else "no"
    return "yes" if value < 1 else "no"


def main():
    text = open("BENCHMARKS.md").read()
    table, met, measured = [], 0, 0
    for _, body in sections(text):
        heading, date = heading_and_date(body)
        for cells in rows(body):
            ok = verdict(cells)
            if ok != "—":
                measured += 1
                met += ok == "yes"
            table.append([heading, date] + cells + [ok])
    lines = ["<!-- summary -->", "",
             "## Summary", "",
             f"Every figure of the sections below in one table: {met} of the {measured} figures with a target "
             "or ceiling meet it. Written by `bench/summary.py` (which `bench/run --all` runs last) from the "
             "sections as they stand; each section says how and when it was measured, and a row's ratio is "
             "explained there.", "",
             f"Machine when this summary was written: {machine()}. Each section names the machine it was "
             "measured on (a section without that line was measured before it was recorded, on an earlier "
             "machine): figures from different machines differ by more than the noise, while a ratio to a "
             "ceiling or comparison holds within its own run.",
             "",
             "| section | measured | benchmark | dataset | figure | compared with | ratio | meets |",
             "|---|---|---|---|---|---|---|---|"]
    lines += ["| " + " | ".join(row) + " |" for row in table]
    lines += ["", "<!-- /summary -->"]
    if "<!-- summary -->" not in text:
        # The summary goes first, right after the title.
        title, _, rest = text.partition("\n")
        text = title + "\n\n<!-- summary -->\n<!-- /summary -->\n" + rest
        with open("BENCHMARKS.md", "w") as f:
            f.write(text)
    replace_section(SUMMARY, lines)
    print(f"summary: {len(table)} rows, {met} of {measured} meet their target")


if __name__ == "__main__":
    main()
