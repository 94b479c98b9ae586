"""`make mutation`: mutmut over the modules that decide outcomes, then one line per module.

mutmut names each mutant after its module's import path, which it derives from the
file's path with only a leading `src/` dropped, and it puts `mutants/`, `.`, `src`
and `source` (nothing else) first on the tests' sys.path. Our package lives in
`scripts/`, so mutmut runs in `.mutation/` (git-ignored), which holds copies of
`scripts/airflow_ha` (as `src/airflow_ha`), `tests` and `pyproject.toml` (with
`[tool.mutmut]`: the modules and the pytest arguments), taken at once when the
run starts, so that edits made during the run do not mix into it.
`paths.REPO_ROOT` of the mutated copy is `.mutation/mutants`, so the repo files
the unit tests read are linked there.

Every run starts afresh: mutmut keeps a verdict while the mutated function is
unchanged, even when the tests changed, so old verdicts would understate the kill
rate. The report reads mutmut's own per-file results (`SourceFileMutationData`)
and statuses (`status_by_exit_code`), not its terminal output.
"""

import argparse
import ast
import io
import os
import shutil
import subprocess
import sys
import tarfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STAGE = REPO / ".mutation"
# What the stage copies (name there -> path in the repo).
STAGE_COPIES = {
    "src/airflow_ha": "scripts/airflow_ha",
    "tests": "tests",
    "pyproject.toml": "pyproject.toml",
}
# Repo files the unit tests read through paths.REPO_ROOT, linked into mutants/.
REPO_FILES = (".env.example", "compose", "dags", "bench", "images", "labs", "examples")


@dataclass
class ModuleResult:
    """mutmut's verdicts for one source file."""

    path: str
    counts: Counter[str] = field(default_factory=Counter)
    survivors: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def kill_rate(self) -> float:
        """Killed (timeouts and type-check failures count as killed) of the tested."""
        tested = self.total - self.counts["not checked"] - self.counts["skipped"]
        caught = self.counts["killed"] + self.counts["timeout"]
        caught += self.counts["caught by type check"]
        return 100.0 * caught / tested if tested else 0.0


@contextmanager
def in_stage() -> Iterator[None]:
    """mutmut reads its config and results relative to the working directory."""
    before = Path.cwd()
    os.chdir(STAGE)
    try:
        yield
    finally:
        os.chdir(before)


def prepare_stage(ref: str | None) -> None:
    """A fresh .mutation/: copies of the sources, tests and config; no old verdicts.

    From the work tree, or from the commit `ref` (when others' half-done edits in
    the work tree would fail the tests before any mutant runs).
    """
    shutil.rmtree(STAGE, ignore_errors=True)
    origin = REPO
    if ref is not None:
        origin = STAGE / "commit"
        archive = subprocess.run(
            ["git", "-C", str(REPO), "archive", "--format=tar", ref, *STAGE_COPIES.values()],
            check=True,
            capture_output=True,
        ).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(origin, filter="data")
    for name, source in STAGE_COPIES.items():
        target = STAGE / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if (origin / source).is_dir():
            ignore = shutil.ignore_patterns("__pycache__")
            shutil.copytree(origin / source, target, ignore=ignore)
        else:
            shutil.copy2(origin / source, target)
    (STAGE / "mutants").mkdir()
    for name in REPO_FILES:
        (STAGE / "mutants" / name).symlink_to(REPO / name)


def module_glob(module: str) -> str:
    """mutmut's name pattern for the mutants of a source file or folder of scripts/."""
    relative = Path(module).resolve().relative_to(REPO / "scripts")
    return ".".join(relative.with_suffix("").parts) + ".*"


def run_mutmut(modules: list[str]) -> int:
    mutmut = Path(sys.executable).parent / "mutmut"
    names = [module_glob(m) for m in modules]
    return subprocess.run([str(mutmut), "run", *names], cwd=STAGE, check=False).returncode


def collect_results(modules: list[str]) -> list[ModuleResult]:
    """Per mutated file, mutmut's verdicts; only `modules`' files when given."""
    from mutmut.mutation.data import SourceFileMutationData
    from mutmut.stats import status_by_exit_code
    from mutmut.utils.file_utils import walk_mutatable_files

    prefixes = tuple(module_glob(m).removesuffix("*") for m in modules) or ("",)
    results = []
    with in_stage():
        for path in sorted(walk_mutatable_files()):
            data = SourceFileMutationData(path=path)
            data.load()
            keys = [k for k in data.exit_code_by_key if k.startswith(prefixes)]
            if not keys:
                continue
            result = ModuleResult(path=str(Path("scripts", *path.parts[1:])))
            for key in keys:
                status = status_by_exit_code[data.exit_code_by_key[key]]
                result.counts[status] += 1
                if status == "survived":
                    result.survivors.append(f"{key}  {mutation_of(key, path)}")
            results.append(result)
    return results


def mutation_of(key: str, path: Path) -> str:
    """`line N: old -> new` from mutmut's diff of the mutant against the original."""
    from mutmut.mutation.diff_apply import get_diff_for_mutant
    from mutmut.utils.format_utils import orig_function_and_class_names_from_key

    diff = get_diff_for_mutant(key, path=path).splitlines()[2:]
    old = [line[1:].strip() for line in diff if line.startswith("-")]
    new = [line[1:].strip() for line in diff if line.startswith("+")]
    source = path.read_text()
    # The first line of the function, on from it, that has the mutated text.
    function, _ = orig_function_and_class_names_from_key(key)
    start, end = next(
        (node.lineno, node.end_lineno or node.lineno)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == function
    )
    lines = source.splitlines()
    line = next((n for n in range(start, end + 1) if old and lines[n - 1].strip() == old[0]), 0)
    return f"line {line}: {' / '.join(old)}  ->  {' / '.join(new)}"


def report(results: list[ModuleResult]) -> str:
    rows = [("module", "total", "killed", "survived", "timeout", "other", "kill rate")]
    for r in results:
        other = r.total - r.counts["killed"] - r.counts["survived"] - r.counts["timeout"]
        rows.append(
            (
                r.path,
                str(r.total),
                str(r.counts["killed"]),
                str(r.counts["survived"]),
                str(r.counts["timeout"]),
                str(other),
                f"{r.kill_rate:.1f} %",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    for r in results:
        odd = {k: v for k, v in r.counts.items() if k not in ("killed", "survived", "timeout")}
        if odd:
            lines.append(f"{r.path}: other = {dict(sorted(odd.items()))}")
    for r in results:
        if r.survivors:
            lines.append(f"\nsurvivors in {r.path}:")
            lines += [f"  {s}" for s in r.survivors]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--module",
        action="append",
        default=[],
        help="a file or folder under scripts/, e.g. scripts/airflow_ha/verify.py (repeatable)",
    )
    parser.add_argument("--ref", help="test this commit's files instead of the work tree")
    parser.add_argument(
        "--report-only", action="store_true", help="summarise the last run without running"
    )
    args = parser.parse_args(argv)
    started = time.monotonic()
    if args.report_only and not (STAGE / "mutants").is_dir():
        print(f"no results in {STAGE}: run `make mutation` first", file=sys.stderr)
        return 2
    if not args.report_only:
        prepare_stage(args.ref)
        code = run_mutmut(args.module)
        if code != 0:
            print(f"mutmut run exited {code}", file=sys.stderr)
            return code
    print(report(collect_results(args.module)))
    if not args.report_only:
        print(f"\nmutation run took {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
