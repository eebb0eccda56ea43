"""Train a RecBole sequential model with CROLoss: ``python run_recbole_croloss.py --model=GRU4Rec --loss=croloss --alpha=1.2``."""
import sys

from recbole_croloss.cli import main

if __name__ == "__main__":
    sys.exit(main())
