"""BENCHMARKS.md is written in sections, one per benchmark script, between `<!-- name -->` and
`<!-- /name -->` markers; each script rewrites its own and leaves the others alone."""

import os


def replace_section(name, lines):
    """Puts `lines` (which begin and end with the markers) in place of section `name`, or at the
    end of the file when it has none yet."""
    opening, closing = f"<!-- {name} -->", f"<!-- /{name} -->"
    text = open("BENCHMARKS.md").read() if os.path.exists("BENCHMARKS.md") else "# Benchmarks\n"
    start, end = text.find(opening), text.find(closing)
    if start >= 0 and end > start:
        text = text[:start] + "\n".join(lines) + text[end + len(closing):]
    else:
        text = text.rstrip("\n") + "\n\n" + "\n".join(lines) + "\n"
    with open("BENCHMARKS.md", "w") as f:
        f.write(text)
