"""The version of the code that computes a job: a SHA-256 over the source of the modules a root
module imports, directly or through others, read with `ast` (nothing is imported).

The closure follows imports of salun's computing packages (`audit`, `attacks`, `unlearners`) and,
for a plugin from another distribution, of the plugin's own top-level package. Imports under
`if TYPE_CHECKING:` are left out; imports inside functions count. `from package import name`
takes the submodule `package.name` when there is one, else the package's `__init__`; a package's
`__init__` is not taken just because a submodule of it is imported, since salun's only register
plugins or are empty, and a plugin's module is part of the code of each job that uses it.

It stops at the modules in STOPS, which cannot change an artifact's numbers: reports, the
results and their descriptions, the command line, pipeline and verify, the engine's
bookkeeping (job identity, manifest, dispatch, executors, progress, store maintenance), the
registry and the error classes. `audit.config` and the plan builders stop too: the spec's code
parses and checks values, and every value a job computes with, as the plan decides it, is
already in that job's params.

The digest hashes each module's dotted name and the SHA-256 of its file, never a path, so two
checkouts of the same code in different folders give the same keys.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import sys
from collections.abc import Iterator
from pathlib import Path

from audit.core.registry import JOB_RUNNERS

PACKAGES = ("audit", "attacks", "unlearners")
SALUN_ROOT = Path(__file__).resolve().parents[2]

STOPS = (
    "audit.config",
    "audit.results",
    "audit.tasks.classification.results",
    "audit.tasks.generation.results",
    "audit.tasks.classification.plan",
    "audit.tasks.generation.plan",
    "audit.cli",
    "audit.pipeline",
    "audit.verify",
    "audit.core.registry",
    "audit.core.errors",
    "audit.engine.job",
    "audit.engine.manifest",
    "audit.engine.code_digest",
    "audit.engine.dispatch",
    "audit.engine.execute",
    "audit.engine.progress",
    "audit.engine.store_maintenance",
    "audit.engine.worker_lifetime",
    "audit.engine.writable",
    "reports",
    "unlearners.checks",
)


def _stopped(name: str) -> bool:
    return any(name == stop or name.startswith(stop + ".") for stop in STOPS)


def _source(name: str, roots: dict[str, Path]) -> Path | None:
    """The file of module `name` when its top-level package is one of `roots`."""
    base = roots.get(name.split(".")[0])
    if base is None:
        return None
    path = base.joinpath(*name.split("."))
    for candidate in (path / "__init__.py", path.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def _import_nodes(nodes: list[ast.AST]) -> Iterator[ast.Import | ast.ImportFrom]:
    """The import statements in `nodes` and below, less those only a type checker runs."""
    for node in nodes:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            yield from _import_nodes(node.orelse)
        else:
            yield from _import_nodes(list(ast.iter_child_nodes(node)))


def _imported(name: str, path: Path, roots: dict[str, Path]) -> set[str]:
    """The modules of `roots` that module `name` (at `path`) imports."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in _import_nodes(ast.parse(path.read_bytes(), str(path)).body):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
            continue
        base = node.module or ""
        if node.level:
            parts = package.split(".")
            base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
        for alias in node.names:
            submodule = f"{base}.{alias.name}"
            found.add(submodule if _source(submodule, roots) else base)
    return {module for module in found if _source(module, roots) is not None}


def _roots_for(module: str) -> dict[str, Path]:
    """Where the closure of `module` looks for sources: salun's packages, and the module's own
    top-level package when it comes from elsewhere (located through the imported module)."""
    roots = {package: SALUN_ROOT for package in PACKAGES}
    top = module.split(".")[0]
    loaded = sys.modules.get(top)
    if top not in roots and getattr(loaded, "__file__", None):
        file = Path(loaded.__file__).resolve()
        roots[top] = file.parent.parent if file.name == "__init__.py" else file.parent
    return roots


def closure(module: str) -> dict[str, str]:
    """Module name -> SHA-256 of its file, for `module` and every module it uses to compute."""
    return dict(_closure(module, tuple(sorted(_roots_for(module).items()))))


@functools.cache
def _closure(module: str, roots: tuple[tuple[str, Path], ...]) -> tuple[tuple[str, str], ...]:
    where = dict(roots)
    digests: dict[str, str] = {}
    pending = [module]
    while pending:
        name = pending.pop()
        path = _source(name, where)
        if name in digests or path is None or (_stopped(name) and name != module):
            continue
        digests[name] = hashlib.sha256(path.read_bytes()).hexdigest()
        pending.extend(_imported(name, path, where))
    return tuple(sorted(digests.items()))


def module_digest(module: str) -> str:
    """SHA-256 over the sorted (name, file SHA-256) of `module`'s closure."""
    hasher = hashlib.sha256()
    for name, digest in closure(module).items():
        hasher.update(f"{name}\0{digest}\n".encode())
    return hasher.hexdigest()


def code_digest_of_kind(kind: str) -> str:
    """The code version of a job kind: the closure of the module that defines its runner."""
    return module_digest(JOB_RUNNERS.get(kind).__module__)
