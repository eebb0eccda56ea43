"""``python -m recbole_croloss --model=GRU4Rec --loss=croloss --alpha=1.2``: the CLI, as a module."""
import sys

from .cli import main

sys.exit(main())
