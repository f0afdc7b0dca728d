"""What delivering a run adds to ``git push`` alone, to the same remote, in one run.

Usage: ``DATABASE_URL=… .venv/bin/python benchmarks/delivery.py [--n 15]``

A bare repository served over smart HTTP by ``git http-backend`` behind basic auth and a
fake GitHub API (``tests/integration/forges.py``), both on this machine. Each round makes two
fresh commits on two fresh branches and, interleaved (so machine noise hits both alike):

* ``git push`` alone: the same command line the delivery runs (hooks off, the one-command
  credential helper), from a ``subprocess.run``;
* the delivery: ``Shipment`` (the remote's URL, the token, the forge adapter), the journaled
  push and the journaled pull request (find by head, then open) — everything the ``deliver``
  node does except rewriting the report artifacts. The journal is a real Postgres one.

It also times one API round trip (a ``GET`` of the pulls) on its own. The target: the
delivery costs no more than the push plus one API round trip per call (two calls).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration.forges import bare_repo, fake_forge, git_http_server  # noqa: E402

from shipyard.delivery.push import _HELPER  # noqa: E402
from shipyard.delivery.shipment import Parcel, Shipment, draft_of  # noqa: E402
from shipyard.delivery.tokens import find_token  # noqa: E402
from shipyard.effects import EffectLog  # noqa: E402
from shipyard.policy.deliver import DeliverPolicy  # noqa: E402
from shipyard.settings import Settings  # noqa: E402
from shipyard.store import Journal, make_engine, migrate, resolve_database_url  # noqa: E402

TOKEN = "bench-token-5f4e3d2c1b0a"
"""The token of the benchmark's own servers."""


def git(repo: Path, *args: str) -> str:
    out = subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)
    return out.stdout.decode().strip()


def commit_on(repo: Path, branch: str) -> str:
    git(repo, "checkout", "-q", "-B", branch, "main")
    (repo / f"{branch.replace('/', '_')}.txt").write_text(branch)
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=B", "-c", "user.email=b@b", "commit", "-qm", branch)
    sha = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-q", "main")
    return sha


def plain_push(repo: Path, commit: str, branch: str) -> float:
    argv = ["git", "-c", "core.hooksPath=/dev/null", "-c", "credential.helper=",
            "-c", f"credential.helper={_HELPER}", "-C", str(repo), "push", "--porcelain",
            "--no-verify", "origin", f"{commit}:refs/heads/{branch}"]  # fmt: skip
    env = {**os.environ, "SHIPYARD_GIT_USERNAME": "x-access-token",
           "SHIPYARD_GIT_PASSWORD": TOKEN, "GIT_TERMINAL_PROMPT": "0"}  # fmt: skip
    start = time.perf_counter()
    subprocess.run(argv, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def delivery(
    repo: Path, journal: Journal, policy: DeliverPolicy, commit: str, branch: str
) -> float:
    start = time.perf_counter()
    parcel = Parcel(repo, branch, commit, "sha256:" + uuid.uuid4().hex, run_branch=branch)
    shipment = Shipment(policy, parcel)
    effects = EffectLog(journal, "bench-" + uuid.uuid4().hex[:8], "0/deliver")
    shipment.push(effects)
    shipment.pull_request(effects, lambda base: draft_of(policy, branch, base, "body", "title"))
    return time.perf_counter() - start


def api_round_trip(api_url: str) -> float:
    import httpx  # noqa: PLC0415

    start = time.perf_counter()
    httpx.get(f"{api_url}/repos/acme/widgets/pulls", headers={"Authorization": f"Bearer {TOKEN}"})
    return time.perf_counter() - start


def summary(name: str, samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    p90 = ms[min(len(ms) - 1, int(0.9 * len(ms)))]
    return f"| {name} | {statistics.median(ms):.1f} | {p90:.1f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--n", type=int, default=15)
    args = parser.parse_args()
    os.environ["GITHUB_TOKEN"] = TOKEN
    tmp = Path(tempfile.mkdtemp(prefix="shipyard-delivery-bench-"))
    url = resolve_database_url(
        Settings(home=tmp / "home", database_url=os.environ.get("DATABASE_URL"))
    )
    migrate(url)
    engine = make_engine(url)
    repo = tmp / "repo"
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    (repo / "a.txt").write_text("a\n")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=B", "-c", "user.email=b@b", "commit", "-qm", "a")
    (tmp / "served").mkdir()
    with (
        fake_forge("github", TOKEN) as forge,
        git_http_server(tmp / "served", "x-access-token", TOKEN) as served,
    ):
        bare_repo(tmp / "served", "widgets", repo)
        git(repo, "remote", "add", "origin", served.repo_url("widgets"))
        policy = DeliverPolicy(push=True, forge="github", api_url=forge.api_url,
                               repository="acme/widgets", base="main")  # fmt: skip
        assert find_token("github") is not None
        journal = Journal(engine)
        pushes, deliveries, trips = [], [], []
        for i in range(args.n + 1):  # the first round warms up
            plain_branch, run_branch = f"plain/{i}", f"shipyard/bench-{i}"
            p = plain_push(repo, commit_on(repo, plain_branch), plain_branch)
            d = delivery(repo, journal, policy, commit_on(repo, run_branch), run_branch)
            t = api_round_trip(forge.api_url)
            if i:
                pushes.append(p)
                deliveries.append(d)
                trips.append(t)
        assert len(forge.pulls) == args.n + 1
    engine.dispose()
    print(f"n = {args.n}\n\n| | median ms | p90 ms |\n|---|---:|---:|")
    print(summary("git push alone", pushes))
    print(summary("delivery (push + find PR + open PR, journaled)", deliveries))
    print(summary("one API round trip", trips))
    added = statistics.median(d - p for d, p in zip(deliveries, pushes, strict=True)) * 1000
    budget = 2 * statistics.median(trips) * 1000
    print(
        f"\nadded by delivery over the push: {added:.1f} ms (two API round trips: {budget:.1f} ms)"
    )


if __name__ == "__main__":
    main()
