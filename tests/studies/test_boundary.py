"""The studies' rule: no library module imports `rewardlab.studies`; only the commands that run a study may, inside
the command, so importing the CLI (or anything else) never loads a study."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import rewardlab

PACKAGE = Path(rewardlab.__file__).parent
STUDIES = "rewardlab.studies"
#: the only modules outside the studies that may import them, and only inside a function
ALLOWED = {"rewardlab.cli.experiment", "rewardlab.cli.prompt_opt", "rewardlab.cli.spans", "rewardlab.cli.steps"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(tree: ast.AST, module: str, is_package: bool) -> Iterator[tuple[str, int, bool]]:
    """(imported module, line, inside a function?) for every import, relative ones resolved against ``module``."""
    def walk(node: ast.AST, in_function: bool) -> Iterator[tuple[str, int, bool]]:
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            if isinstance(child, ast.Import):
                yield from ((alias.name, child.lineno, in_function) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = module.split(".")[: len(module.split(".")) - child.level + (1 if is_package else 0)]
                    base = ".".join([*anchor, base] if base else anchor)
                yield base, child.lineno, in_function
                yield from ((f"{base}.{alias.name}", child.lineno, in_function) for alias in child.names)
            yield from walk(child, nested)

    yield from walk(tree, False)


def violations(source: str, module: str, is_package: bool = False) -> list[str]:
    found = []
    tree = ast.parse(source)
    if not module.startswith(STUDIES) and module not in ALLOWED:  # importlib.import_module("rewardlab.studies...")
        found += [f"{module}:{node.lineno} names {node.value!r}" for node in ast.walk(tree)
                  if isinstance(node, ast.Constant) and isinstance(node.value, str)
                  and (node.value == STUDIES or node.value.startswith(STUDIES + "."))]
    for name, line, in_function in imported(tree, module, is_package):
        if name != STUDIES and not name.startswith(STUDIES + "."):
            continue
        if module.startswith(STUDIES):
            continue
        if module not in ALLOWED:
            found.append(f"{module}:{line} imports {name}")
        elif not in_function:
            found.append(f"{module}:{line} imports {name} at module level (import it inside the command)")
    return found


def test_no_library_module_imports_a_study() -> None:
    modules = sorted(PACKAGE.rglob("*.py"))
    assert len(modules) > 50 and any(module_name(p) == "rewardlab.studies.bon_noise" for p in modules)
    found = [v for p in modules for v in violations(p.read_text(encoding="utf-8"), module_name(p), p.name == "__init__.py")]
    assert not found, "\n".join(found)


def test_the_allowed_commands_do_run_studies() -> None:
    """The allowed set is not stale: each allowed module imports a study (lazily)."""
    for name in ALLOWED:
        path = PACKAGE.parent.joinpath(*name.split(".")).with_suffix(".py")
        uses = [n for n, _, lazy in imported(ast.parse(path.read_text(encoding="utf-8")), name, False)
                if n.startswith(STUDIES) and lazy]
        assert uses, name


def test_the_checker_sees_every_spelling() -> None:
    assert violations("from rewardlab.studies.bon_noise import run_study", "rewardlab.optimize.x")
    assert violations("import rewardlab.studies.prompt_oirl as s", "rewardlab.report.markdown")
    assert violations("from rewardlab import studies", "rewardlab.evaluate.x")
    assert violations("from ..studies import demo_reward", "rewardlab.optimize.x")
    assert violations("from .. import studies", "rewardlab.optimize", is_package=True)
    assert violations("from rewardlab.studies import bon_noise", "rewardlab.cli.experiment")  # module level
    assert not violations("def f():\n    from rewardlab.studies import bon_noise\n", "rewardlab.cli.experiment")
    assert violations("def f():\n    from rewardlab.studies import bon_noise\n", "rewardlab.cli.pipeline")
    assert violations("importlib.import_module('rewardlab.studies.bon_noise')", "rewardlab.optimize.x")
    assert not violations("from rewardlab.studies_of_mine import x", "rewardlab.optimize.x")
    assert not violations("from rewardlab.report import Report", "rewardlab.studies.demo_reward")


def test_importing_the_cli_loads_no_study() -> None:
    code = ("import sys, rewardlab.cli, rewardlab.report, rewardlab.optimize.prompt_opt; "
            f"print(sorted(m for m in sys.modules if m.startswith({STUDIES!r})))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
