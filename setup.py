"""Install recbole-croloss: ``pip install .`` (CPU faiss) or ``RECBOLE_CROLOSS_FAISS=gpu pip install '.[gpu]'``.

Version bounds, chosen deliberately:

- ``recbole==1.2.1``: the adapter and the fixes in ``recbole_croloss/compat.py`` are written
  against this release's internals (Trainer._train_epoch's loss_func hook, Config, evaluator).
- ``torch>=2.0``, no upper bound: the adapter uses only stable APIs; tested with 2.13.
- no numpy bound: RecBole 1.2.1 pins ``ray<=2.6.3``, and ``ray.tune`` fails to import on numpy 2
  and on setuptools >= 81 (pkg_resources), but only ``recbole.quick_start`` imports ray and this
  project never imports it; the two numpy 2 aliases RecBole needs are restored in compat.py.
- ``pandas>=1.3,<3``: pandas 3's copy-on-write makes RecBole's chained ``df[col].fillna(...,
  inplace=True)`` a silent no-op and breaks ``token_seq`` fields (``Series.agg(len)``); pandas 2.x
  runs RecBole as written (numpy 2 included).
- ``pyarrow>=15``: the lean ``.inter`` reader (``recbole_croloss/data/lean_inter.py``) uses its
  CSV reader with dictionary-encoded columns and ``ChunkedArray.unify_dictionaries``; tested
  with 26.
- ``ray`` extra: RecBole pins ``ray<=2.6.3`` (Python <= 3.11 only); its core runs on numpy 2
  but imports ``pkg_resources``, so the extra holds setuptools below 81 (docs/benchmarks.md, "Ray version").
- ``docs`` extra: MkDocs, its Material theme and mkdocstrings' Python handler for the site under
  ``docs/`` (``mkdocs serve``); lower bounds are the versions the strict build is tested with.
- ``tune`` extra: Optuna for ``python -m recbole_croloss.tune``. hyperopt (RecBole's own
  ``HyperTuning``, tested) is not required: RecBole imports it only when tuning; from 0.2.7 its
  exhaustive search needs the fix in compat.py, which the plugin applies.
- faiss: ``faiss-cpu`` by default. ``faiss-gpu`` provides the same ``faiss`` module, so the two
  must not be installed together: an extra cannot remove a base requirement, so the ``gpu`` extra
  is paired with ``RECBOLE_CROLOSS_FAISS=gpu``, which drops ``faiss-cpu`` from the requirements.
"""
import os

from setuptools import find_packages, setup

FAISS_GPU = os.environ.get("RECBOLE_CROLOSS_FAISS", "cpu").lower() == "gpu"

install_requires = [
    "recbole==1.2.1",
    "torch>=2.0",
    "pyyaml>=5.1",
    "pandas>=1.3,<3",
    "pyarrow>=15",
    "tqdm>=4.48",
    "scipy>=1.6",
    "matplotlib>=3.5",
] + ([] if FAISS_GPU else ["faiss-cpu>=1.7.4"])

setup(
    name="recbole-croloss",
    version="0.1.0",
    description="CROLoss (Customizable Recall@N Optimization Loss) for RecBole sequential models",
    long_description=open(os.path.join(os.path.dirname(__file__), "README.md"), encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["recbole_croloss", "recbole_croloss.*"]),
    package_data={"recbole_croloss": ["properties/*.yaml", "properties/*/*.yaml"]},
    python_requires=">=3.9",
    install_requires=install_requires,
    extras_require={
        "gpu": ["faiss-gpu>=1.7.4"],
        # python -m recbole_croloss.tune (TPE, median pruning, RDB storage with heartbeats)
        "tune": ["optuna>=3.2"],
        # the tests run the Optuna search and RecBole's own HyperTuning (hyperopt)
        "test": ["pytest>=7", "optuna>=3.2", "hyperopt>=0.2.7"],
        # the benchmark runner's --ray-address: RecBole 1.2.1 already pulls ray<=2.6.3 on
        # Python <= 3.11, whose core needs pkg_resources (setuptools < 81); see docs/benchmarks.md, "Ray version"
        "ray": ["ray>=2.6,<=2.6.3; python_version<'3.12'", "setuptools<81; python_version<'3.12'"],
        # the documentation site: mkdocs serve / mkdocs build --strict
        "docs": ["mkdocs>=1.6.1", "mkdocs-material>=9.8.2", "mkdocstrings[python]>=1.0.8"],
    },
    entry_points={"console_scripts": ["recbole-croloss=recbole_croloss.quick_start:main"]},
)
