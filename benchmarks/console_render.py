"""The web console's server-side render time and its decision latency, against the API's.

Usage: ``.venv/bin/python benchmarks/console_render.py [--runs 10000] [--events 1000]
[--samples 40] [--decisions 8]``

One server (``create_app`` under uvicorn, one in-process worker, the scripted model) on a
fresh database (``DATABASE_URL``'s server if set, else an embedded Postgres):

* render: ``--runs`` runs of one owner in ``runs``/``threads`` (1 % waiting for approval),
  and one run whose thread has ``--events`` checkpoints (its timeline). Interleaved, median
  and p90 of ``--samples`` GETs each: the runs list (``/ui/``, first page), the run page
  (``/ui/runs/{id}``) and a bare ``GET /threads/{id}`` of the same thread.
* decision: ``--decisions`` runs waiting at plan approval, alternately decided over the API
  (``POST /threads/{id}/runs/stream`` with the resume: time to its first ``updates`` event)
  and in the browser (Debian's Chromium: Approve clicked on the run page, timed in the page
  from the click until the timeline shows the node after the approval, pushed over SSE).
  Medians of each.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import hashlib
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from langgraph.checkpoint.base import empty_checkpoint  # noqa: E402
from tests.e2e.conftest import RunningServer, run_server  # noqa: E402
from tests.e2e.console_support import browser, open_tab, start_run  # noqa: E402
from tests.e2e.runs_support import make_repo  # noqa: E402
from tests.support import finish, plan_reply, wait_until  # noqa: E402

from benchmarks.node_overhead import fresh_database  # noqa: E402
from shipyard.settings import Settings  # noqa: E402
from shipyard.store import open_checkpointer, psycopg_conninfo  # noqa: E402

OWNER = "local"
SEED_THREADS = """
INSERT INTO threads (thread_id, owner, status, metadata)
SELECT md5('bench' || g)::uuid::text, %(owner)s, 'idle', '{"graph_id": "shipyard"}'::jsonb
FROM generate_series(1, %(n)s) AS g
"""
SEED_RUNS = """
INSERT INTO runs (id, thread_id, status, goal, repo, branch, usage, created_at, updated_at)
SELECT md5('bench' || g)::uuid::text, md5('bench' || g)::uuid::text,
       CASE WHEN g %% 100 = 0 THEN 'awaiting_approval' ELSE 'completed' END,
       'benchmark goal number ' || g, '/srv/repo-' || (g %% 7), 'shipyard/bench-' || g,
       '{"model_calls": 12, "cost_usd": 0.0132}'::jsonb,
       now() - (g || ' seconds')::interval, now() - (g || ' seconds')::interval + interval '90s'
FROM generate_series(1, %(n)s) AS g
"""


def seed_runs(url: str, n: int) -> None:
    with psycopg.connect(psycopg_conninfo(url)) as conn:
        conn.execute(SEED_THREADS, {"owner": OWNER, "n": n})
        conn.execute(SEED_RUNS, {"n": n})


async def seed_timeline(url: str, thread_id: str, events: int) -> None:
    """``events`` checkpoints on ``thread_id``, each sending the graph to one node."""
    nodes = ["execute", "validate", "refine"]
    config: Any = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
    start = datetime.now(UTC) - timedelta(seconds=events)
    async with open_checkpointer(url) as saver:
        for i in range(events):
            checkpoint = empty_checkpoint()
            checkpoint["ts"] = (start + timedelta(seconds=i)).isoformat()
            checkpoint["updated_channels"] = [f"branch:to:{nodes[i % 3]}"]
            metadata: Any = {"source": "loop", "step": i}
            config = await saver.aput(config, checkpoint, metadata, {})


def timed(fn: Callable[[], Any]) -> float:
    began = time.perf_counter()
    fn()
    return (time.perf_counter() - began) * 1000


def render(
    running: RunningServer, samples: int, thread_id: str, runs: int, events: int
) -> dict[str, list[float]]:
    gets = {
        f"runs list (/ui/, {runs:,} runs)": "/ui/",
        f"run page (/ui/runs/{{id}}, {events:,} timeline entries)": f"/ui/runs/{thread_id}",
        "bare GET /threads/{id}": f"/threads/{thread_id}",
    }
    times: dict[str, list[float]] = {k: [] for k in gets}
    with httpx.Client(base_url=running.url, timeout=60) as http:
        for path in gets.values():
            http.get(path).raise_for_status()  # warm-up
        for _ in range(samples):
            for label, path in gets.items():
                times[label].append(timed(lambda p=path: http.get(p).raise_for_status()))
    return times


def api_decision(url: str, tid: str) -> float:
    state = httpx.get(f"{url}/threads/{tid}/state", timeout=30).json()
    value = state["interrupts"][0]["value"]
    resume = {"decision": "approve", "by": "bench", "content_hash": value["content_hash"]}
    body = {"assistant_id": "shipyard", "command": {"resume": resume}, "stream_mode": "updates"}
    began = time.perf_counter()
    with httpx.stream("POST", f"{url}/threads/{tid}/runs/stream", json=body, timeout=60) as r:
        for line in r.iter_lines():
            if line.startswith("event: updates"):
                return (time.perf_counter() - began) * 1000
    raise RuntimeError("the resumed run sent no update")


WATCH = """() => {
  window.__seen = null;
  const seen = () => [...document.querySelectorAll('#timeline .name')]
    .some((n) => n.textContent === 'execute');
  const note = () => { if (window.__seen === null && seen()) window.__seen = performance.now(); };
  new MutationObserver(note).observe(document.body, {childList: true, subtree: true});
  window.__clicked = performance.now();
  document.querySelector('#decision button[value=approve]').click();
}"""
"""Click Approve and note, in the page, when the timeline first shows ``execute`` (no
Playwright round trips inside the measured span)."""


def console_decision(tab: Any, url: str, tid: str) -> float:
    page = tab.page
    page.goto(f"{url}/ui/runs/{tid}")
    page.locator("#decision button[value=approve]").wait_for()
    page.wait_for_timeout(300)  # the live connection is open
    page.evaluate(WATCH)
    # Polled from here: the page's CSP forbids wait_for_function's string evaluation.
    wait_until(lambda: page.evaluate("() => window.__seen") is not None, what="the next node")
    return float(page.evaluate("() => window.__seen - window.__clicked"))


def decisions(running: RunningServer, repo: Path, n: int) -> dict[str, list[float]]:
    url = running.url
    policy = {"approvals": {"plan": "always", "changes": "protected-only"}}
    times: dict[str, list[float]] = {
        "API resume → next event": [],
        "console click → next event": [],
    }
    with browser() as launched:
        tab = open_tab(launched)
        for i in range(n):
            tid = start_run(url, f"decide {i}", repo, policy)
            wait_until(lambda t=tid: _waits(url, t), timeout=120, what=f"{tid} waits")
            if i % 2:
                times["console click → next event"].append(console_decision(tab, url, tid))
            else:
                times["API resume → next event"].append(api_decision(url, tid))
            wait_until(lambda t=tid: _idle(url, t), timeout=120, what=f"{tid} done")
    return times


def _waits(url: str, tid: str) -> bool:
    return bool(httpx.get(f"{url}/threads/{tid}/state", timeout=30).json()["interrupts"])


def _idle(url: str, tid: str) -> bool:
    return httpx.get(f"{url}/threads/{tid}", timeout=30).json()["status"] != "busy"


def table(rows: dict[str, list[float]]) -> None:
    print("| | median ms | p90 ms | n |\n|---|---:|---:|---:|")
    for label, values in rows.items():
        ordered = sorted(values)
        p90 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]
        print(f"| {label} | {statistics.median(values):.1f} | {p90:.1f} | {len(values)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=1_000)
    parser.add_argument("--samples", type=int, default=40)
    parser.add_argument("--decisions", type=int, default=8)
    args = parser.parse_args()
    import os  # noqa: PLC0415

    with (
        fresh_database(os.environ.get("DATABASE_URL")) as (url, where),
        tempfile.TemporaryDirectory() as tmp,
    ):
        print(f"database: {where}")
        root = Path(tmp)
        script = root / "script.json"
        script.write_text(
            json.dumps({"planner": [plan_reply(("s1", "noop"))], "developer": {"s1/1": [finish()]}})
        )
        settings = Settings(home=root / "home", database_url=url, model_script=script)
        running = run_server(dataclasses.replace(settings))
        try:
            seed_runs(url, args.runs)
            # A seeded run: its thread gets the timeline.
            thread_id = str(uuid.UUID(hashlib.md5(f"bench{args.runs}".encode()).hexdigest()))
            asyncio.run(seed_timeline(url, thread_id, args.events))
            table(render(running, args.samples, thread_id, args.runs, args.events))
            print()
            table(decisions(running, make_repo(root, {"README": "x\n"}), args.decisions))
        finally:
            running.stop()


if __name__ == "__main__":
    main()
