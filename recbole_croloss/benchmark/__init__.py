"""The benchmark runner: ``python -m recbole_croloss.benchmark GRID.yaml --out DIR``.

- :mod:`.grid`: the YAML grid and its cells (checked before any cell runs);
- :mod:`.runner`: each cell one CLI process; local threads (one cell per GPU with ``--gpus``);
- :mod:`.store`: one atomic JSON record per finished cell, so a run resumes where it stopped;
- :mod:`.report`: the paper's tables 2-4 and figure 4 with paired comparisons, from the store.
"""
from .grid import Cell, Grid, GridError, load_grid, parse_grid
from .store import ResultStore

__all__ = ["Cell", "Grid", "GridError", "ResultStore", "load_grid", "parse_grid"]
