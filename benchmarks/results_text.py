"""Every figure of the results pages (docs/results/), the docs and README.md traced to a stored result.

Each section of a page that quotes measured figures names where they come from, in a comment
under its ``## `` heading (or at the top of the page, for every section of it), one source a
line:

    <!-- figures:
    report benchmarks/grids/models-ml-100k.yaml benchmarks/results/models-ml-100k
    script benchmarks/compare_models.py benchmarks/results/models-ml-100k
    -->

- ``report GRID STORE``: the runner's report, rendered again from the store's cells (and the
  committed ``report/report.md`` must be that rendering), the grid's settings and
  ``benchmarks/cell_table.py STORE`` (each cell's figures and cost);
- ``script PATH ARGS...``: what a compare script prints for a store;
- ``file PATH``: a stored raw output (a benchmark's JSON or text);
- ``cited FIGURES...: WHERE FROM``: figures quoted from a paper or another project, not measured
  here, with where they come from.

A figure is a decimal number in the section's text outside code (``40.90``, ``+0.21``,
``-1.59``; not versions like ``3.11.7`` or ``Python 3.12``, nor counts like ``1.7M``). Each must be a figure the sources print, written with
its decimals or rounded to fewer (``0.276`` for a printed ``0.2758``), with the printed sign when
the text gives one. A section with figures and no sources fails too.

``python benchmarks/results_text.py [PAGE.md ...]`` lists every figure it cannot trace and every
stale report, by page and section, and exits 1 if there is one; without a page it checks
README.md and every page under docs/.
"""
from __future__ import annotations

import contextlib
import io
import os
import re
import runpy
import shlex
import sys
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def pages() -> list[str]:
    """What the check reads by default: README.md and every Markdown page under docs/."""
    docs = os.path.join(ROOT, "docs")
    found = [os.path.join(folder, name) for folder, _, names in os.walk(docs) for name in names
             if name.endswith(".md")]
    return [os.path.join(ROOT, "README.md"), *sorted(found)]

_SOURCES = re.compile(r"<!--\s*figures:(.*?)-->", re.S)
_CODE = re.compile(r"```.*?```|`[^`]*`|<!--.*?-->", re.S)
# Versions (``Python 3.12``, ``torch >= 2.6``, ``Python 3.7-3.11``) and counts written with a
# multiplier (``1.7M items``) are not measured figures.
_NOT_FIGURES = re.compile(r"\b(?:Python|torch|Ray|RecBole|CUDA|faiss|numpy|pandas|Optuna|Triton|Linux)\s*(?:[<>=]=?\s*)?"
                          r"\d+(?:\.\d+)*\+?(?:-\d+(?:\.\d+)*)?|\b\d+(?:\.\d+)?[kMB]\b")
# A decimal with an optional sign; a '-' right after a digit is a range's dash, not a sign.
_NUMBER = re.compile(r"(?<![\w.])(?:(?<!\d)([+\-−]))?(\d+\.\d+)(?![\w]*\.\d|\d)")


@dataclass
class Section:
    """One ``## `` section of the results: its title, line, text and declared sources."""
    title: str
    line: int
    text: str
    sources: list[list[str]] = field(default_factory=list)


def sections(markdown: str) -> list[Section]:
    """The page's top (before its first ``## ``) and its ``## `` sections (a ``### `` heading
    stays inside its section). Sources named at the top hold for every section of the page."""
    found: list[Section] = [Section("(top of the page)", 1, "")]
    fenced = False
    for number, line in enumerate(markdown.splitlines(keepends=True), 1):
        fenced ^= line.startswith("```")
        if line.startswith("## ") and not fenced:
            found.append(Section(line[3:].strip(), number, ""))
        else:
            found[-1].text += line
    for section in found:
        for block in _SOURCES.findall(section.text):
            section.sources += [_source(line) for line in block.strip().splitlines() if line.strip()]
    for section in found[1:]:
        section.sources = found[0].sources + section.sources
    return found


def _source(line: str) -> list[str]:
    """A source line's words; a citation keeps its text whole."""
    if line.startswith("cited "):
        return ["cited", line[len("cited "):]]
    return shlex.split(line)


def figures(text: str) -> list[str]:
    """The figures of a text outside code and comments, as written (``−`` read as ``-``)."""
    prose = _NOT_FIGURES.sub(" ", _CODE.sub(" ", text))
    return [(sign or "").replace("−", "-") + digits for sign, digits in _NUMBER.findall(prose)]


def _traceable(printed: list[str]) -> set[str]:
    """What printed figures let the text say: each as printed and rounded to fewer decimals,
    with its sign or without; a positive figure also with ``+``."""
    allowed = set()
    for value in printed:
        number = Decimal(value)
        for places in range(len(value.split(".")[1]) + 1):
            rounded = number.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
            text = f"{rounded:f}"
            if "." not in text:
                continue  # a figure is written with decimals
            unsigned = text.lstrip("+-")
            allowed |= {unsigned, text if text[0] == "-" else "+" + unsigned}
    return allowed


@lru_cache(maxsize=None)
def render(source: tuple[str, ...]) -> str:
    """The text one source prints."""
    kind, *args = source
    if kind == "cited":
        quoted = " ".join(args)
        if ":" not in quoted or not quoted.split(":", 1)[1].strip():
            raise ValueError(f"figures source `cited {quoted}`: say where the figures come from after a ':'")
        return quoted.split(":", 1)[0]
    if kind == "report":
        return report_markdown(*args)
    if kind == "script":
        return script_output(*args)
    if kind == "file":
        with open(os.path.join(ROOT, args[0]), encoding="utf-8") as fh:
            return fh.read()
    raise ValueError(f"figures source {' '.join(source)!r}: the kind must be report, script, file or cited")


def report_markdown(grid_path: str, store_path: str) -> str:
    """The runner's report for a store, rendered from its cells without writing anything."""
    from recbole_croloss.benchmark.grid import load_grid
    from recbole_croloss.benchmark.report import render_report
    from recbole_croloss.benchmark.store import ResultStore

    grid = load_grid(os.path.join(ROOT, grid_path), check=False)
    rendered = render_report(grid, ResultStore(os.path.join(ROOT, store_path))).text
    with open(os.path.join(ROOT, grid_path), encoding="utf-8") as fh:
        settings = fh.read()
    return "\n".join([rendered, _SETTINGS_MARK, settings, script_output("benchmarks/cell_table.py", store_path)])


#: Where a report source's rendering ends and the grid's settings and cell table begin.
_SETTINGS_MARK = "<!-- the grid and its cells -->"


def script_output(path: str, *args: str) -> str:
    """What ``python PATH ARGS`` prints, run in this process from the project's root."""
    out, argv, cwd = io.StringIO(), sys.argv, os.getcwd()
    try:
        os.chdir(ROOT)
        sys.argv = [path, *args]
        with contextlib.redirect_stdout(out):
            runpy.run_path(os.path.join(ROOT, path), run_name="__main__")
    except SystemExit as stop:
        if stop.code not in (None, 0):
            raise ValueError(f"figures source `script {path} {' '.join(args)}` failed: {stop.code}") from None
    finally:
        sys.argv = argv
        os.chdir(cwd)
    return out.getvalue()


def _without_figure_links(markdown: str) -> str:
    lines = [line for line in markdown.splitlines() if not line.startswith("![")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def stale_reports(section: Section) -> list[str]:
    """The section's report sources whose committed ``report/report.md`` is not what the cells
    give now (figure links aside: drawing them is not checked)."""
    stale = []
    for kind, *args in section.sources:
        if kind == "report":
            path = os.path.join(ROOT, args[1], "report", "report.md")
            committed = open(path, encoding="utf-8").read() if os.path.exists(path) else ""
            rendered = render(("report", *args)).split("\n" + _SETTINGS_MARK)[0]
            if _without_figure_links(committed) != _without_figure_links(rendered):
                stale.append(os.path.relpath(path, ROOT))
    return stale


def untraced(section: Section) -> list[str]:
    """The section's figures that none of its sources prints."""
    written = figures(section.text)
    if not section.sources:
        return written
    allowed = set()
    for source in section.sources:
        allowed |= _traceable(figures(render(tuple(source))))
    return [value for value in written if value not in allowed]


def check(path: str) -> int:
    """Print what one page gets wrong; the number of untraced figures and stale reports."""
    with open(path, encoding="utf-8") as fh:
        found = sections(fh.read())
    failures = 0
    for section in found:
        for stale in stale_reports(section):
            failures += 1
            print(f"line {section.line}, ## {section.title}: {stale} is not what its cells give; "
                  f"rewrite it with `python -m recbole_croloss.benchmark GRID --out STORE --report-only`")
        missing = untraced(section)
        if missing:
            failures += len(missing)
            why = "no `figures:` sources" if not section.sources else "not printed by its sources"
            print(f"line {section.line}, ## {section.title}: {len(missing)} figures {why}: "
                  + ", ".join(dict.fromkeys(missing)))
    print(f"{failures} untraced figures in {len(found)} sections of {os.path.relpath(path, ROOT)}")
    return failures


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    missing = [path for path in argv if not os.path.isfile(path)]
    if missing:
        print(f"error: no such page: {', '.join(missing)} (give markdown files, or nothing for README.md "
              "and every docs/ page)", file=sys.stderr)
        return 2
    failures = sum([check(path) for path in (argv or pages())])  # every page reported, not the first only
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
