"""Report the code structure of recbole_croloss: long modules, long functions, import graph.

Reads the sources with ``ast`` only, so it works on a tree that does not import.

    python benchmarks/code_structure.py                   # sizes and the import graph
    python benchmarks/code_structure.py --layers          # ... plus layering violations
    python benchmarks/code_structure.py --layers --check  # exit 1 on anything over a limit
"""
import argparse
import ast
import sys
from pathlib import Path

PACKAGE = "recbole_croloss"
MODULE_LINE_LIMIT = 450
FUNCTION_LINE_LIMIT = 60
EXTERNAL_PACKAGES = {"recbole", "torch", "numpy", "pandas", "faiss", "yaml", "ray", "tqdm",
                     "scipy", "matplotlib", "optuna", "sqlalchemy"}
# Module-name prefix -> layer (lower = more basic); the longest prefix on dotted boundaries wins.
LAYERS = {
    # 0: the torch-only bottom
    "recbole_croloss.errors": 0, "recbole_croloss.io": 0, "recbole_croloss.loss": 0,
    "recbole_croloss.evaluation": 0, "recbole_croloss.scoring": 0, "recbole_croloss.sampler": 0,
    "recbole_croloss.distributed": 0, "recbole_croloss.faiss_index": 0,
    # 1: models
    "recbole_croloss.model": 1,
    # 2: RecBole glue
    "recbole_croloss.compat": 2, "recbole_croloss.glue": 2, "recbole_croloss.data": 2,
    # 3: settings and the run flow; the package's own entry also covers every module without a
    # prefix of its own
    "recbole_croloss.settings": 3, "recbole_croloss.flow": 3,
    "recbole_croloss": 3,
    # 4: on top of the run flow: reloading and recommending, tuning, the benchmark runner
    "recbole_croloss.serving": 4, "recbole_croloss.tune": 4, "recbole_croloss.benchmark": 4, "recbole_croloss.recbole_contract": 4,
    # 5: the command lines, and the names kept where they used to live
    "recbole_croloss.cli": 5, "recbole_croloss.__main__": 5, "recbole_croloss.quick_start": 5,
    "recbole_croloss.loading": 5, "recbole_croloss.recommender": 5, "recbole_croloss.recommend": 5,
    "recbole_croloss.retrieval": 5, "recbole_croloss.spec": 5,
}
# Models and everything below them may subclass RecBole's model base, nothing more.
RECBOLE_ALLOWED_LOW = ("recbole.model", "recbole.utils")
LOW_LAYER_MAX = 1


def package_modules(repo_root, package=PACKAGE):
    """Map each module name of the package to its source path."""
    modules = {}
    for path in sorted((Path(repo_root) / package).rglob("*.py")):
        parts = list(path.relative_to(repo_root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def long_modules(repo_root, limit=MODULE_LINE_LIMIT, package=PACKAGE):
    """(module, physical line count) for every package module over ``limit`` lines."""
    sizes = ((name, len(path.read_text().splitlines()))
             for name, path in package_modules(repo_root, package).items())
    return [(name, lines) for name, lines in sizes if lines > limit]


def _functions(node, prefix=""):
    """Yield (qualified name, line count) of the functions under ``node``, nested ones included."""
    for child in ast.iter_child_nodes(node):
        name = prefix
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            name = f"{prefix}{child.name}."
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield name[:-1], child.end_lineno - child.lineno + 1
        yield from _functions(child, name)


def function_lengths(path):
    """(qualified name, line count) of every function and method in one file."""
    return list(_functions(ast.parse(Path(path).read_text())))


def long_functions(repo_root, limit=FUNCTION_LINE_LIMIT, package=PACKAGE):
    """(file:function, line count) over ``limit`` in the package, benchmarks/ and the CLI script."""
    root = Path(repo_root)
    files = list(package_modules(root, package).values()) + sorted(root.glob("benchmarks/*.py"))
    files += [path for path in [root / "run_recbole_croloss.py"] if path.exists()]
    return [(f"{path.relative_to(root)}:{name}", lines)
            for path in files for name, lines in function_lengths(path) if lines > limit]


def _imports(node, lazy=False):
    """Yield (import node, is_lazy) for every import under ``node``; lazy: inside a function."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child, lazy
        inner = lazy or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        yield from _imports(child, inner)


def _imported_names(node, module, is_package, known, package=PACKAGE):
    """Full module names one import statement refers to (``from pkg import submodule`` included)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        parts = module.split(".") if is_package else module.split(".")[:-1]
        parts = parts[:len(parts) - node.level + 1]
        base = ".".join(parts + ([base] if base else []))
    if base.split(".")[0] != package and base != "recbole":
        return [base]
    names = [f"{base}.{alias.name}" for alias in node.names]
    submodules = [name for name in names if name in known or base == "recbole"]
    return submodules if len(submodules) == len(names) else [base] + submodules


def import_graph(repo_root, package=PACKAGE):
    """module -> {"eager": set, "lazy": set, "external": set, "recbole_eager": set}."""
    modules = package_modules(repo_root, package)
    graph = {}
    for module, path in modules.items():
        entry = {"eager": set(), "lazy": set(), "external": set(), "recbole_eager": set()}
        for node, lazy in _imports(ast.parse(path.read_text())):
            for name in _imported_names(node, module, path.name == "__init__.py", modules, package):
                top = name.split(".")[0]
                if top == package:
                    entry["lazy" if lazy else "eager"].add(name)
                elif top in EXTERNAL_PACKAGES:
                    entry["external"].add(top)
                    if top == "recbole" and not lazy:
                        entry["recbole_eager"].add(name)
        entry["lazy"] -= entry["eager"]
        graph[module] = entry
    return graph


def layer_prefix(module, layers=LAYERS):
    """The longest prefix of ``module`` in ``layers``, on dotted boundaries, or None."""
    matches = [prefix for prefix in layers if module == prefix or module.startswith(prefix + ".")]
    return max(matches, key=len) if matches else None


def layer_of(module, layers=LAYERS):
    return layers.get(layer_prefix(module, layers))


def unlisted_modules(graph, layers=LAYERS, package=PACKAGE):
    """Modules that get their layer only from the package's own entry (no prefix of their own)."""
    return [module for module in sorted(graph) if module != package and layer_prefix(module, layers) == package]


def layer_violations(graph, layers=LAYERS):
    """Human-readable violations: imports upwards, and RecBole beyond the model base below."""
    violations = []
    for module, entry in sorted(graph.items()):
        own = layer_of(module, layers)
        if own is None:
            continue
        for kind in ("eager", "lazy"):
            for target in sorted(entry[kind]):
                other = layer_of(target, layers)
                if other is not None and other > own:
                    violations.append(f"{module} (layer {own}) -> {target} (layer {other}), {kind}")
        if own <= LOW_LAYER_MAX:
            for target in sorted(entry["recbole_eager"]):
                if not any(target == ok or target.startswith(ok + ".") for ok in RECBOLE_ALLOWED_LOW):
                    violations.append(f"{module} (layer {own}) -> {target}, eager RecBole import")
    return violations


def import_cycles(graph):
    """Every set of package modules that import each other, directly or round a loop (eager and
    lazy imports alike; a package's ``__init__`` and its own submodules aside): Tarjan's strongly
    connected components of more than one module, each sorted."""
    def edges(module):
        targets = graph[module]["eager"] | graph[module]["lazy"]
        return [t for t in targets if t in graph and not t.startswith(module + ".") and not module.startswith(t + ".")]

    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(module):
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in edges(module):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return sorted(cycles)


def _short(name, package=PACKAGE):
    return name[len(package) + 1:] if name.startswith(package + ".") else name


def _group(module, modules, package=PACKAGE):
    """The subpackage a module is listed under; top-level modules go under the package."""
    parts = module.split(".")
    is_subpackage = len(parts) == 2 and any(other.startswith(module + ".") for other in modules)
    return ".".join(parts[:2]) if len(parts) > 2 or is_subpackage else package


def _graph_line(module, entry, package=PACKAGE):
    line = f"  {_short(module, package)} -> {', '.join(_short(n, package) for n in sorted(entry['eager'])) or '-'}"
    if entry["lazy"]:
        line += f" (lazy: {', '.join(_short(n, package) for n in sorted(entry['lazy']))})"
    if entry["external"]:
        line += f" [ext: {', '.join(sorted(entry['external']))}]"
    return line


def format_graph(graph, package=PACKAGE):
    """One line per module, grouped by subpackage; package names shown without the prefix."""
    groups = {module: _group(module, graph, package) for module in graph}
    lines, current = [], None
    for module in sorted(graph, key=lambda m: (groups[m] != package, groups[m], m)):
        if groups[module] != current:
            current = groups[module]
            lines.append(f"[{current}]")
        lines.append(_graph_line(module, graph[module], package))
    return lines


def _print_findings(title, findings):
    print(f"{title}: {len(findings)}")
    for finding in findings:
        print(f"  {finding}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=str(Path(__file__).resolve().parents[1]), help="repository root")
    parser.add_argument("--layers", action="store_true", help="check the imports against LAYERS")
    parser.add_argument("--check", action="store_true", help="exit 1 on anything over a limit or a violation")
    args = parser.parse_args(argv)
    big_modules = long_modules(args.root)
    big_functions = long_functions(args.root)
    graph = import_graph(args.root)
    _print_findings(f"modules over {MODULE_LINE_LIMIT} lines", [f"{n}: {k}" for n, k in big_modules])
    _print_findings(f"functions over {FUNCTION_LINE_LIMIT} lines", [f"{n}: {k}" for n, k in big_functions])
    print("import graph (module -> package imports (lazy: imports inside functions) [ext: external]):")
    print("\n".join(format_graph(graph)))
    violations = layer_violations(graph) if args.layers else []
    if args.layers:
        unlisted = ", ".join(_short(module) for module in unlisted_modules(graph))
        print(f"layer {LAYERS[PACKAGE]} from the package's own entry (no prefix of their own): {unlisted or '-'}")
        violations += [" <-> ".join(map(_short, cycle)) + ": an import cycle" for cycle in import_cycles(graph)]
        _print_findings("layering violations and import cycles", violations)
    failed = bool(big_modules or big_functions or violations)
    return 1 if args.check and failed else 0


if __name__ == "__main__":
    sys.exit(main())
