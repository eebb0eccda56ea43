"""README.md and every page under docs/ (the results pages, docs/results/, above all) against the
stores: every figure of the text is printed by the sources its page or section names, every
committed report is what its cells give, and the check fails on a figure or a report that
disagrees."""
import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SPEC = importlib.util.spec_from_file_location("results_text", ROOT / "benchmarks" / "results_text.py")
results_text = sys.modules.setdefault("results_text", importlib.util.module_from_spec(SPEC))
SPEC.loader.exec_module(results_text)


#: README.md and every page under docs/, globbed when the tests are collected.
PAGES = ["README.md", *sorted(str(page.relative_to(ROOT)) for page in (ROOT / "docs").rglob("*.md"))]


def test_the_check_reads_the_readme_and_every_docs_page_by_default():
    assert "docs/results/models-ml-100k.md" in PAGES and "docs/results/index.md" in PAGES
    assert [str(Path(page).relative_to(ROOT)) for page in results_text.pages()] == PAGES


@pytest.mark.parametrize("text", PAGES)
def test_every_figure_of_the_results_is_printed_by_its_sources(capsys, text):
    status = results_text.main([str(ROOT / text)])
    assert status == 0, capsys.readouterr().out


def test_a_figure_that_disagrees_with_its_store_is_caught():
    markdown = (ROOT / "docs" / "results" / "models-ml-100k.md").read_text(encoding="utf-8")
    models = next(s for s in results_text.sections(markdown) if "| GRU4Rec | ce |" in s.text)
    assert models.title == "(top of the page)"  # the page's sources are at its top
    assert "| GRU4Rec | ce | **40.90 ± 0.50** |" in models.text and results_text.untraced(models) == []
    models.text = models.text.replace("| GRU4Rec | ce | **40.90 ± 0.50** |", "| GRU4Rec | ce | **40.91 ± 0.50** |")
    assert results_text.untraced(models) == ["40.91"]


def test_what_counts_as_a_figure_and_how_it_may_be_written():
    assert results_text.figures("Python 3.11.7, `alpha\n0.8`, 1.4-3.4x faster, −0.5 and +2.00 <!-- 9.9 --> on "
                                "Python 3.12, torch >= 2.6 and Python 3.7-3.11, 1.7M items, 2.5 ms") \
        == ["1.4", "3.4", "-0.5", "+2.00", "2.5"]
    section = results_text.sections("## s\n\n<!-- figures:\ncited 0.2758 +1.25 -0.004: a test\n-->\n"
                                     "0.276 0.28 1.25 +1.25 1.3 -0.00 0.00\n")[1]
    assert results_text.untraced(section) == []
    section.text += "0.2759 -1.25 0.4 +0.004\n"
    assert results_text.untraced(section) == ["0.2759", "-1.25", "0.4", "+0.004"]
    top, untraced = results_text.sections("# A page\n\n2.5 s\n\n## no sources\n\nit took 2.5 s\n")
    assert results_text.untraced(top) == results_text.untraced(untraced) == ["2.5"]
    top, covered = results_text.sections("# A page\n<!-- figures:\ncited 2.5: a test\n-->\n## s\n\nit took 2.5 s\n")
    assert results_text.untraced(top) == results_text.untraced(covered) == []  # the top's sources hold below


def test_a_report_that_is_not_what_its_cells_give_is_caught(tmp_path):
    store = tmp_path / "sparse-ml-100k"
    shutil.copytree(ROOT / "benchmarks" / "results" / "sparse-ml-100k", store)
    grid = ROOT / "benchmarks" / "grids" / "sparse-ml-100k.yaml"
    section = results_text.sections(f"## s\n\n<!-- figures:\nreport {grid} {store}\n-->\n")[1]
    assert results_text.stale_reports(section) == []
    # The stored test Recall@100 of every cell changes: the committed report no longer matches.
    for cell in (store / "cells").glob("*.json"):
        record = json.loads(cell.read_text())
        record["run"]["test_result"]["recall@100"] += 0.01
        cell.write_text(json.dumps(record))
    results_text.render.cache_clear()
    stale = results_text.stale_reports(section)
    assert len(stale) == 1 and stale[0].endswith("sparse-ml-100k/report/report.md")


def test_a_page_that_is_not_there_is_one_sentence(capsys):
    assert results_text.main(["no/such/page.md"]) == 2
    assert capsys.readouterr().err == ("error: no such page: no/such/page.md (give markdown files, or nothing "
                                       "for README.md and every docs/ page)\n")
