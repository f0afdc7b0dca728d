"""Validation of an unchanged tree: from the check cache vs running the checks.

Builds a small Python project in a temporary git repository (pytest tests + a ruff config),
then times ``run_checks`` with an empty cache (the checks run through the launcher) and with
a warm cache (only the tree hash is computed and the evidence looked up). Prints the median
of each in milliseconds and their ratio.

    .venv/bin/python benchmarks/check_cache.py [--repeat 5] [--modules 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from shipyard.sandbox.launcher import make_launcher
from shipyard.store.artifacts import ArtifactStore
from shipyard.tools.checks import MemoryCheckCache, detect_checks, run_checks


def build_project(root: Path, modules: int) -> None:
    (root / "tests").mkdir(parents=True)
    (root / "pyproject.toml").write_text("[tool.ruff]\nline-length = 100\n")
    (root / "tests" / "__init__.py").write_text("")
    for i in range(modules):
        (root / f"mod{i}.py").write_text(f"def f{i}(x):\n    return x + {i}\n")
        tests = "".join(
            f"\n\ndef test_f{i}_{j}():\n    assert f{i}({j}) == {i + j}\n" for j in range(5)
        )
        (root / "tests" / f"test_mod{i}.py").write_text(f"from mod{i} import f{i}\n{tests}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env |= {"GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@x"}
    env |= {"GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@x"}
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "bench"]):
        subprocess.run(["git", "-C", str(root), *args], check=True, env=env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--modules", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="shipyard-bench-") as tmp:
        root = Path(tmp) / "project"
        build_project(root, args.modules)
        specs = detect_checks(root)
        launcher = make_launcher()
        store = ArtifactStore(Path(tmp) / "artifacts")

        def once(cache: MemoryCheckCache) -> tuple[float, bool]:
            start = time.perf_counter()
            evidence = run_checks(
                specs, workspace=root, launcher=launcher, artifacts=store, run_id="b", cache=cache
            )
            elapsed = (time.perf_counter() - start) * 1000
            assert all(e.passed for e in evidence), [e.summary for e in evidence]
            return elapsed, all(e.cached for e in evidence)

        cold = [once(MemoryCheckCache())[0] for _ in range(args.repeat)]
        warm_cache = MemoryCheckCache()
        once(warm_cache)
        warm = []
        for _ in range(args.repeat):
            ms, cached = once(warm_cache)
            assert cached
            warm.append(ms)
    cold_ms, warm_ms = statistics.median(cold), statistics.median(warm)
    print(f"checks: {', '.join(s.name for s in specs)}; {args.modules * 5} tests")
    print(f"isolation: {launcher.report().level}; repeats: {args.repeat} (median)")
    print(f"run the checks:   {cold_ms:9.1f} ms")
    print(f"from the cache:   {warm_ms:9.1f} ms")
    print(f"ratio:            {cold_ms / warm_ms:9.1f}x")


if __name__ == "__main__":
    main()
