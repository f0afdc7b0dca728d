"""``python -m tests.e2e.worker_main HOME DATABASE_URL LEASE_S``: a worker process serving the
packaged graphs plus ``slow`` (tests/e2e/slow_graph.py), as ``shipyard worker`` would."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from shipyard.server.processes.worker_process import run_worker_process
from shipyard.settings import Settings
from tests.e2e.runs_support import GRAPHS, ROOT


def main() -> None:
    home, url, lease = sys.argv[1], sys.argv[2], float(sys.argv[3])
    settings = Settings(home=Path(home), database_url=url)
    asyncio.run(run_worker_process(settings, 1, lease_s=lease, graphs=GRAPHS, graphs_base=ROOT))


if __name__ == "__main__":
    main()
