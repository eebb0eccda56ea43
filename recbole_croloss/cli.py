"""The command line of a run, like RecBole's ``run_recbole.py``: arguments, then one call.

    python run_recbole_croloss.py --model=GRU4Rec --loss=croloss --alpha=1.2 [--dataset=ml-100k]
        [--config_files="a.yaml b.yaml"] [--record=PATH] [--any_recbole_key=value ...]
"""
from __future__ import annotations

import argparse
import sys

from .settings.alpha_search import summary_text
from .errors import reporting_errors
from .evaluation import results_table
from .flow.launch import launch_run
from .flow.run_header import summary_lines


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="run_recbole_croloss.py",
        description="Train a RecBole sequential model with CROLoss and evaluate full-ranking "
                    "Recall/NDCG/Hit/MRR@50/100/200/500. Any RecBole key is accepted as --key=value.")
    parser.add_argument("--model", "-m", default="GRU4Rec", help="model name (plugin or RecBole)")
    parser.add_argument("--dataset", "-d", default="ml-100k", help="dataset name (ml-100k is bundled)")
    parser.add_argument("--config_files", default=None, help="YAML files, space-separated")
    parser.add_argument("--record", default=None, help="also write the run's JSON record to this file")
    args, rest = parser.parse_known_args(argv)
    cmd = {}
    for arg in rest:
        key, sep, value = arg[2:].partition("=") if arg.startswith("--") else ("", "", "")
        if not key or not sep:
            parser.error(f"unrecognised argument {arg!r}: settings are written --key=value")
        if key in cmd and cmd[key] != value:
            parser.error(f"--{key} given twice with different values")
        cmd[key] = value
    files = args.config_files.split() if args.config_files else None
    return args.model, args.dataset, files, cmd, args.record


def main(argv=None) -> int:
    model, dataset, files, cmd, record_file = parse_args(sys.argv[1:] if argv is None else argv)
    # bad settings or files: 2; a diverged or failed distributed run: 1 (errors.reporting_errors)
    return reporting_errors(lambda: report(launch_run(model, dataset, config_file_list=files, cmd_args=cmd,
                                                      record_file=record_file)))


def report(result: dict | None) -> int:
    """Print a finished run's results; the exit status (1 when its faiss serving failed)."""
    if result is None:  # a rank other than 0: rank 0 reports
        return 0
    print(f"\n{result['model']} on {result['dataset']}, loss={result['loss']} "
          f"(protocol: {result['protocol_label']}; "
          f"{'' if result.get('protocol') == 'sampled' else 'full ranking; '}test split)")
    print(results_table(result["test_result"]))
    if "alpha_search" in result:
        print(summary_text(result["alpha_search"]))
    status = 0
    if "faiss" in result:
        from .flow.faiss_check import serving_text

        print(serving_text(result["faiss"]))
        status = 1 if "error" in result["faiss"] else 0
    for line in summary_lines(result):
        print(line)
    if result["files"].get("result"):
        print(f"config and metrics: {result['files']['result']}")
    return status
