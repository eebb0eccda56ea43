"""MkDocs hook: the benchmark runner's plots on the results pages.

The runner's reports draw their PNGs under ``benchmarks/results/<store>/report/``, outside
``docs_dir``, where a strict build cannot link. This hook adds each of them to the site as
``results/plots/<store>/<name>.png``, so that a page under ``docs/results/`` embeds one with the
relative link ``plots/<store>/<name>.png``. It also keeps the hooks themselves (this file, its
bytecode) out of the built site.
"""
from __future__ import annotations

from pathlib import Path

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[2]
STORES = ROOT / "benchmarks" / "results"


def plot_files() -> dict[str, Path]:
    """Where each report plot goes in the site (``results/plots/<store>/<name>.png``) -> its file."""
    return {f"results/plots/{png.parent.parent.name}/{png.name}": png
            for png in sorted(STORES.glob("*/report/*.png"))}


def on_files(files: Files, config) -> Files:
    for file in list(files):
        if file.src_uri.startswith("hooks/"):
            files.remove(file)
    for src_uri, png in plot_files().items():
        present = files.get_file_from_path(src_uri)
        if present is not None:
            files.remove(present)  # a copy under docs/ would be stale: the store's is the one drawn
        files.append(File.generated(config, src_uri, abs_src_path=str(png)))
    return files
