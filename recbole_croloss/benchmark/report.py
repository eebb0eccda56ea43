"""Reports from a benchmark's stored results (nothing is re-run): the paper's tables 2-4,
figure 4, and paired comparisons across seeds for every claim the report makes.

All figures are test-split Recall@N in %, mean ± sample std over the seeds that finished
(``n``). Where a report picks "the best" setting of a family, it picks it on the **validation**
split (mean over seeds of validation Recall@N, at each N) and reports that setting's test
figures, so that no choice is made on the numbers being compared.

Paired comparisons of X against Y at N (:mod:`.paired`): the seed-level t-interval, and where
the cells stored per-user hits a two-stage bootstrap over seeds and users, whose interval gives
the verdict. The convergence section (:mod:`.convergence`) flags every cell whose best
validation came near its budget, and a training-curve figure per model shows each method's
validation score against the training step.
"""
from __future__ import annotations

import csv
import io
import math
import os
import statistics
from dataclasses import dataclass

from ..loss import PRESETS
from . import convergence
from .figure4 import recall_by_n_figure
from .grid import Grid, Method
from .paired import PairedDifference, first_best, mean_std
from .store import ResultStore

PAPER_NS = (50, 100, 200, 500)
CONVENTIONAL = ("ce", "sampled_softmax", "bpr", "triplet")
CROLOSS_FAMILY = ("croloss", "croloss_lambda")


@dataclass
class CellResult:
    """One finished cell, reduced to what the reports use."""

    dataset: str
    model: str
    method: Method
    seed: int
    protocol: str
    test_recall: dict  # N -> Recall@N
    valid_recall: dict
    record: dict       # the run's record (history, stop reason, ...)
    hits: dict | None  # the test users' per-user hits, where the cell stored them


def _recall_by_n(metrics: dict) -> dict[int, float]:
    """Recall@N by N; a grid that measured Hit only (``protocol: sampled``, one target per case,
    where HR@N is Recall@N) gives its Hit@N."""
    for name in ("recall@", "hit@"):
        found = {int(k.split("@")[1]): float(v) for k, v in (metrics or {}).items() if k.lower().startswith(name)}
        if found:
            return found
    return {}


def collect_results(grid: Grid, store: ResultStore) -> list[CellResult]:
    """The stored results of ``grid``'s cells (unfinished cells are simply absent)."""
    out = []
    for cell in grid.cells():
        record = store.get(cell.key)
        if record is None:
            continue
        run = record["run"]
        out.append(CellResult(cell.dataset, cell.model.label, cell.method, cell.seed,
                              run.get("protocol_label") or run.get("protocol", "?"),
                              _recall_by_n(run["test_result"]), _recall_by_n(run["best_valid_result"]),
                              run, store.per_user_hits(cell.key)))
    return out


def format_percent(mean: float, std: float) -> str:
    if math.isnan(mean):
        return "–"
    return f"{100 * mean:.2f} ± {100 * std:.2f}" if not math.isnan(std) else f"{100 * mean:.2f}"


# --- grouping ----------------------------------------------------------------------------------
class ModelResults:
    """The results of one model on one dataset: method label -> seed -> CellResult."""

    def __init__(self, dataset: str, model: str, results: list[CellResult]):
        self.dataset, self.model = dataset, model
        self.by_method: dict[str, dict[int, CellResult]] = {}
        self.methods: dict[str, Method] = {}
        for r in results:
            self.by_method.setdefault(r.method.label, {})[r.seed] = r
            self.methods[r.method.label] = r.method
        protocols = sorted({r.protocol for r in results})
        self.protocol = " / ".join(protocols)
        self.ns = sorted({n for r in results for n in r.test_recall})
        self.table_ns = [n for n in PAPER_NS if n in self.ns] or self.ns[:4]

    def test_by_seed(self, label: str, n: int) -> dict[int, float]:
        return {s: r.test_recall[n] for s, r in self.by_method.get(label, {}).items() if n in r.test_recall}

    def hits_by_seed(self, label: str) -> dict[int, dict]:
        return {s: r.hits for s, r in self.by_method.get(label, {}).items() if r.hits is not None}

    def difference(self, x: str, y: str, n: int) -> PairedDifference:
        return PairedDifference.of(self.test_by_seed(x, n), self.test_by_seed(y, n),
                                   self.hits_by_seed(x), self.hits_by_seed(y), n)

    def valid_mean(self, label: str, n: int) -> float:
        values = [r.valid_recall[n] for r in self.by_method.get(label, {}).values() if n in r.valid_recall]
        return statistics.fmean(values) if values else -math.inf

    def test_stats(self, label: str, n: int) -> tuple[float, float, int]:
        return mean_std(self.test_by_seed(label, n).values())

    def labels_of(self, losses) -> list[str]:
        """The methods of ``losses`` with a fixed alpha (an ``alpha: auto`` cell is its own row)."""
        return [label for label, m in self.methods.items() if m.loss in losses and not m.searches_alpha]

    def best_on_valid(self, losses, n: int) -> str | None:
        """The label of the family's setting with the highest mean validation Recall@n (of equal
        ones, the first in the grid's order)."""
        return first_best(self.labels_of(losses), lambda label: self.valid_mean(label, n))

    def alpha_rows(self) -> dict[str, dict[float, str]]:
        """CROLoss-family settings that differ only in alpha, with 2+ alphas:
        ``{"croloss(kernel=sigmoid)": {0.6: label, 0.8: label, ...}}`` (table 3's rows)."""
        rows: dict[str, dict[float, str]] = {}
        for label, method in self.methods.items():
            alpha = method.settings_dict.get("alpha")
            if method.loss in CROLOSS_FAMILY and alpha is not None and not method.searches_alpha:
                rows.setdefault(method.label_without("alpha"), {})[float(alpha)] = label
        return {row: by_alpha for row, by_alpha in rows.items() if len(by_alpha) >= 2}

    @property
    def title(self) -> str:
        return f"{self.dataset}, {self.model} (protocol: {self.protocol})"


def group_by_model(results: list[CellResult]) -> list[ModelResults]:
    keys = list(dict.fromkeys((r.dataset, r.model) for r in results))
    return [ModelResults(d, m, [r for r in results if (r.dataset, r.model) == (d, m)]) for d, m in keys]


# --- tables ------------------------------------------------------------------------------------
class Table:
    """Markdown and long-format CSV rows of one table."""

    def __init__(self, name: str, caption: str, header: list[str]):
        self.name, self.caption, self.header = name, caption, header
        self.rows: list[list[str]] = []
        self.notes: list[str] = []
        self.csv_rows: list[dict] = []

    def markdown(self) -> str:
        lines = [f"**{self.caption}**", "", "| " + " | ".join(self.header) + " |",
                 "|" + "---|" * len(self.header)]
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        return "\n".join(lines + ([""] + self.notes if self.notes else []))


def _csv_row(results: ModelResults, table: str, row: str, n: int, label: str, extra: dict | None = None) -> dict:
    mean, std, count = results.test_stats(label, n)
    return {"dataset": results.dataset, "model": results.model, "protocol": results.protocol, "table": table,
            "row": row, "N": n, "setting": label, "recall_mean": mean, "recall_std": std, "seeds": count,
            **(extra or {})}


def loss_comparison_table(results: ModelResults) -> Table:
    """Method x Recall@N: each conventional loss, then the best CROLoss and the best
    CROLoss-lambda setting at each N (chosen on validation)."""
    table = Table("table2", f"Table 2 layout — {results.title}: test Recall@N (%), mean ± std over seeds",
                  ["method", "seeds", *[f"R@{n}" for n in results.table_ns]])
    for loss in CONVENTIONAL:
        for label in results.labels_of((loss,)):
            stats = [results.test_stats(label, n) for n in results.table_ns]
            table.rows.append([label, str(max(s[2] for s in stats)),
                               *[format_percent(m, s) for m, s, _ in stats]])
            table.csv_rows += [_csv_row(results, "table2", label, n, label) for n in results.table_ns]
    for label in [label for label, m in results.methods.items() if m.searches_alpha]:
        stats = [results.test_stats(label, n) for n in results.table_ns]
        table.rows.append([label, str(max(s[2] for s in stats)), *[format_percent(m, s) for m, s, _ in stats]])
        chosen = {s: r.record["alpha_search"]["chosen"]["label"] for s, r in results.by_method[label].items()}
        table.notes.append(f"{label}: chose " + "; ".join(f"seed {s}: {c}" for s, c in sorted(chosen.items())))
        table.csv_rows += [_csv_row(results, "table2", label, n, label) for n in results.table_ns]
    for family, name in ((("croloss",), "CROLoss (best on valid)"),
                         (("croloss_lambda",), "CROLoss-lambda (best on valid)")):
        chosen = {n: results.best_on_valid(family, n) for n in results.table_ns}
        if not any(chosen.values()):
            continue
        stats = [results.test_stats(chosen[n], n) for n in results.table_ns]
        table.rows.append([name, str(max(s[2] for s in stats)), *[format_percent(m, s) for m, s, _ in stats]])
        table.notes.append(f"{name}: " + "; ".join(f"R@{n}: {chosen[n]}" for n in results.table_ns))
        table.csv_rows += [_csv_row(results, "table2", name, n, chosen[n]) for n in results.table_ns]
    return table


def kernel_alpha_table(results: ModelResults) -> Table | None:
    """Kernel x alpha at each N (CROLoss rows; CROLoss-lambda rows where the grid has 2+ alphas).
    Bold: the best row of each column; <u>underlined</u>: the best alpha of each row at each N."""
    rows = results.alpha_rows()
    if not rows:
        return None
    alphas = sorted({a for r in rows.values() for a in r})
    table = Table("table3", f"Table 3 layout — {results.title}: test Recall@N (%) by kernel and alpha, "
                  "mean ± std over seeds; **bold**: best of the column, <u>underlined</u>: best alpha of "
                  "the row at that N", ["kernel", *[f"R@{n} α={a:g}" for n in results.table_ns for a in alphas]])
    means = {(r, n, a): results.test_stats(rows[r][a], n)[0] if a in rows[r] else math.nan
             for r in rows for n in results.table_ns for a in alphas}
    for row, by_alpha in rows.items():
        cells = []
        for n in results.table_ns:
            row_best = max((a for a in by_alpha), key=lambda a: means[row, n, a])
            for a in alphas:
                if a not in by_alpha:
                    cells.append("–")
                    continue
                mean, std, _ = results.test_stats(by_alpha[a], n)
                text = format_percent(mean, std)
                if a == row_best:
                    text = f"<u>{text}</u>"
                if means[row, n, a] == max(v for (r2, n2, a2), v in means.items()
                                           if (n2, a2) == (n, a) and not math.isnan(v)):
                    text = f"**{text}**"
                cells.append(text)
                table.csv_rows.append(_csv_row(results, "table3", row, n, by_alpha[a], {"alpha": a}))
        table.rows.append([row, *cells])
    return table


def lambda_kernel_tables(results: ModelResults) -> list[Table]:
    """phi_1 x phi_2 of CROLoss-lambda, one table per alpha that has 2+ kernel pairs."""
    by_alpha: dict[float, dict[tuple, str]] = {}
    for label, method in results.methods.items():
        settings = method.settings_dict
        if method.loss == "croloss_lambda" and not method.searches_alpha:
            rest = tuple((k, v) for k, v in method.settings if k not in ("loss", "alpha", "kernel", "lambda_kernel"))
            settings = {**PRESETS["croloss_lambda"].defaults, **settings}  # unset: the preset's phi_1, phi_2, alpha
            key = (settings["lambda_kernel"], settings["kernel"], rest)
            by_alpha.setdefault(float(settings["alpha"]), {})[key] = label
    tables = []
    for alpha, pairs in sorted(by_alpha.items()):
        if len(pairs) < 2:
            continue
        table = Table("table4" if len(tables) == 0 else f"table4_alpha{alpha:g}",
                      f"Table 4 layout — {results.title}: CROLoss-lambda, alpha {alpha:g}, test Recall@N (%), "
                      "mean ± std over seeds; **bold**: best of the column",
                      ["kernel φ1", "kernel φ2", "seeds", *[f"R@{n}" for n in results.table_ns]])
        best = {n: max(pairs.values(), key=lambda label: results.test_stats(label, n)[0])
                for n in results.table_ns}
        for (phi1, phi2, rest), label in sorted(pairs.items(), key=lambda kv: (kv[0][0], kv[0][1])):
            cells = []
            for n in results.table_ns:
                mean, std, _ = results.test_stats(label, n)
                text = format_percent(mean, std)
                cells.append(f"**{text}**" if best[n] == label else text)
                table.csv_rows.append(_csv_row(results, table.name, f"{phi1} + {phi2}", n, label,
                                               {"alpha": alpha}))
            extra = f" ({', '.join(f'{k}={v}' for k, v in rest)})" if rest else ""
            seeds = max(results.test_stats(label, n)[2] for n in results.table_ns)
            table.rows.append([phi1, phi2 + extra, str(seeds), *cells])
        tables.append(table)
    return tables


# --- paired comparisons (the claims) -----------------------------------------------------------
def paired_comparisons(results: ModelResults) -> tuple[list[str], list[dict]]:
    """Markdown lines and CSV rows of every comparison the report states:

    (a) per kernel row of table 3: the largest alpha against the smallest, at each N;
    (b) at each N, the best CROLoss-family setting against the best conventional loss;
    (c) at each N, the best CROLoss-lambda against the best plain CROLoss, and each
        CROLoss-lambda setting against plain CROLoss with the same phi_2 and alpha.
    """
    lines, rows = [f"### {results.title}", ""], []

    def compare(claim, n, x, y):
        difference = results.difference(x, y, n)
        verdict = difference.verdict(x, y)
        rows.append({"dataset": results.dataset, "model": results.model, "protocol": results.protocol,
                     "claim": claim, "N": n, "x": x, "y": y, "mean_diff": difference.mean,
                     "std_diff": difference.std, "seeds": difference.n, "wins": difference.wins,
                     "ci_low": difference.low, "ci_high": difference.high, "users": difference.users,
                     "boot_low": difference.boot_low, "boot_high": difference.boot_high,
                     "verdict": verdict, "sign": _sign(verdict, x, y)})
        return f"| {n} | {x} | {y} | {difference.text()} | {verdict} |"

    table_head = ["| N | X | Y | Δ = X − Y, Recall@N (points) | verdict |", "|---|---|---|---|---|"]
    alpha_rows = results.alpha_rows()
    if alpha_rows:
        lines += ["**(a) larger alpha: higher Recall at small N, lower at large N.** Largest alpha "
                  "against smallest, per kernel; the claim holds for a row when X beats Y at the "
                  "smallest N and Y beats X at the largest.", "", *table_head]
        for by_alpha in alpha_rows.values():
            smallest, largest = by_alpha[min(by_alpha)], by_alpha[max(by_alpha)]
            lines += [compare("a", n, largest, smallest) for n in results.table_ns]
        lines.append("")
    if results.labels_of(CONVENTIONAL) and results.labels_of(CROLOSS_FAMILY):
        lines += ["**(b) the best CROLoss beats the best conventional loss at every N.** Each "
                  "side's best setting at N chosen on validation Recall@N.", "", *table_head]
        lines += [compare("b", n, results.best_on_valid(CROLOSS_FAMILY, n),
                          results.best_on_valid(CONVENTIONAL, n)) for n in results.table_ns]
        lines.append("")
    plain_labels, lambda_labels = results.labels_of(("croloss",)), results.labels_of(("croloss_lambda",))
    if plain_labels and lambda_labels:
        lines += ["**(c) the Lambda method beats plain CROLoss.** Best of each on validation; then "
                  "each Lambda setting against plain CROLoss with the same φ2 and alpha.", "", *table_head]
        lines += [compare("c-best", n, results.best_on_valid(("croloss_lambda",), n),
                          results.best_on_valid(("croloss",), n)) for n in results.table_ns]
        for label in lambda_labels:
            settings = results.methods[label].settings
            plain_twin = Method(tuple((k, v) if k != "loss" else (k, "croloss") for k, v in settings
                                      if k != "lambda_kernel"))
            if plain_twin.label in plain_labels:
                lines += [compare("c-matched", n, label, plain_twin.label) for n in results.table_ns]
        lines.append("")
    return lines, rows


def _sign(verdict: str, x: str, y: str) -> int:
    """+1 where X beats Y, -1 where Y beats X, 0 where inconclusive."""
    return 1 if verdict == f"{x} beats {y}" else -1 if verdict == f"{y} beats {x}" else 0


# --- writing -------------------------------------------------------------------------------------
def _write_text(path: str, text: str) -> None:
    tmp = os.path.join(os.path.dirname(path), "." + os.path.basename(path) + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _csv_text(rows: list[dict]) -> str:
    if not rows:
        return ""
    fields = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


@dataclass
class RenderedReport:
    """A report rendered from the stored results: ``report.md``'s text, each CSV's rows, and
    the figures to draw (file name -> (draw function, its arguments))."""
    markdown: list[str]
    csv_rows: dict[str, list[dict]]
    figures: dict

    @property
    def text(self) -> str:
        """``report.md`` without its figure links."""
        return "\n".join(line for line in self.markdown if not line.startswith("<figures ")) + "\n"


def render_report(grid: Grid, store: ResultStore) -> RenderedReport:
    """Every table, comparison and figure of the report, from the stored results; writes nothing.
    Figures are listed in ``report.md`` where they will be drawn; a figure whose data is missing
    is dropped when :func:`write_reports` draws it."""
    results = collect_results(grid, store)
    kernel = grid.report.get("figure_kernel", "sigmoid")
    markdown = [f"# Benchmark {grid.name}", "",
          f"{len(results)} of {len(grid.cells())} cells finished; seeds {grid.seeds}. Test-split Recall@N in %, "
          "mean ± sample std over the seeds that finished. \"Best\" settings are chosen on the "
          "validation split. Made by `python -m recbole_croloss.benchmark` from the records in "
          "`cells/`.", ""]
    csv_rows: dict[str, list[dict]] = {"table2": [], "table3": [], "table4": [], "comparisons": []}
    figures = {}
    markdown += convergence.summary_lines(results, convergence.flagged(results))
    for model_results in group_by_model(results):
        markdown += [f"## {model_results.title}", ""]
        for table in [loss_comparison_table(model_results), kernel_alpha_table(model_results),
                      *lambda_kernel_tables(model_results)]:
            if table is None:
                continue
            markdown += [table.markdown(), ""]
            csv_rows["table4" if table.name.startswith("table4") else table.name] += table.csv_rows
        lines, rows = paired_comparisons(model_results)
        markdown += ["### Paired comparisons across seeds", "", *convergence.claim_lines(rows), *lines[2:]]
        csv_rows["comparisons"] += rows
        curves = f"curves_{model_results.dataset}_{model_results.model}.png".replace("/", "-")
        figures[curves] = (f"![training curves, {model_results.title}]({curves})",
                           convergence.training_curves_figure, (model_results,))
        png = f"figure4_{model_results.dataset}_{model_results.model}.png".replace("/", "-")
        figures[png] = (f"![figure 4, {model_results.title}]({png})", recall_by_n_figure, (model_results, kernel))
        markdown.append(_FIGURES_OF.format(curves=curves, png=png))
    return RenderedReport(markdown, csv_rows, figures)


#: Where a model's figures go in ``report.md``; filled by :func:`write_reports` once drawn.
_FIGURES_OF = "<figures {curves} {png}>"


def write_reports(grid: Grid, store: ResultStore) -> dict[str, str]:
    """Write ``report/`` from the stored results: ``report.md`` (every table, the comparisons and
    the figures), ``table2.csv``, ``table3.csv``, ``table4.csv``, ``comparisons.csv`` and
    ``figure4_<dataset>_<model>.png``. Returns name -> path of what was written."""
    rendered = render_report(grid, store)
    os.makedirs(store.report_dir, exist_ok=True)
    written, drawn = {}, {}
    for name, (link, draw, args) in rendered.figures.items():
        path = os.path.join(store.report_dir, name)
        if draw(*args, path):
            written[name], drawn[name] = path, [link, ""]
    markdown = []
    for line in rendered.markdown:
        if line.startswith("<figures "):
            markdown += [part for name in line[len("<figures "):-1].split() for part in drawn.get(name, [])]
        else:
            markdown.append(line)
    for name, rows in rendered.csv_rows.items():
        if rows:
            written[f"{name}.csv"] = os.path.join(store.report_dir, f"{name}.csv")
            _write_text(written[f"{name}.csv"], _csv_text(rows))
    written["report.md"] = os.path.join(store.report_dir, "report.md")
    _write_text(written["report.md"], "\n".join(markdown) + "\n")
    return written
