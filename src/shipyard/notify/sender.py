"""The sender: drains the outbox of one database, from any number of processes at once.

Each pass claims the due rows (``outbox.CLAIM``: ``FOR UPDATE SKIP LOCKED``, a lease of
``NotifyConfig.lease_s``), renders each with the renderer of its ``kind``, POSTs them
concurrently and records the outcome: ``sent`` on a 2xx answer; another attempt after
1, 2, 4 … (at most 300) seconds on a network error, a timeout, 429 or 5xx, until
``NotifyConfig.attempts`` attempts were made; ``failed`` at once on any other answer, a
redirect (never followed) or a refused address. Nothing is held while sending; a sender
killed mid-send leaves its rows to be claimed again when their lease runs out.

Guarded requests (run webhooks) connect only to the addresses ``notify.guard.resolve``
checked (each in turn, until one connects), with the URL's host in ``Host`` and in TLS's
server name; no request uses the proxy variables — a proxy would reach what the guard
refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Collection, Mapping
from typing import Any

import httpx
import psycopg
from psycopg.rows import DictRow
from psycopg_pool import AsyncConnectionPool

from shipyard.notify import guard
from shipyard.notify.config import NotifyConfig
from shipyard.notify.outbox import CLAIM, FAILED, KEEP_DAYS, PRUNE, RETRY, SENT, Delivery
from shipyard.notify.outgoing import Outgoing, Renderer, UndeliverableError

log = logging.getLogger(__name__)

Pool = AsyncConnectionPool[psycopg.AsyncConnection[DictRow]]
MAX_DELAY_S = 300.0
PRUNE_EVERY_S = 3600.0


class RetryableError(Exception):
    """This attempt failed in a way a later one may not (network, timeout, 429, 5xx)."""


def backoff_s(attempts: int) -> float:
    """Seconds before the attempt after attempt number ``attempts`` (1, 2, 4 … 300)."""
    return min(2.0 ** max(attempts - 1, 0), MAX_DELAY_S)


class Sender:
    """Delivers the outbox rows of ``pool``'s database."""

    def __init__(
        self,
        pool: Pool,
        config: NotifyConfig,
        renderers: Mapping[str, Renderer],
        *,
        batch: int = 16,
        poll_s: float = 1.0,
        targets: Collection[str] | None = None,
    ) -> None:
        """Claims only rows of a ``kind`` in ``renderers`` and, when ``targets`` is given,
        only rows for those targets (a process that knows only some endpoints leaves the
        others' rows to the processes configured for them)."""
        self.pool = pool
        self.config = config
        self.renderers = dict(renderers)
        self.batch = batch
        self.poll_s = poll_s
        self.targets = None if targets is None else sorted(targets)
        self._wake = asyncio.Event()
        self._client = httpx.AsyncClient(
            timeout=config.timeout_s, follow_redirects=False, trust_env=False
        )

    def wake(self) -> None:
        """Look for due rows now rather than at the next poll (safe from the event loop)."""
        self._wake.set()

    async def drain(self) -> int:
        """Attempt every row due now; return how many attempts were made."""
        total = 0
        while batch := await self._claim():
            await asyncio.gather(*(self._deliver(d) for d in batch))
            total += len(batch)
        return total

    async def run(self) -> None:
        """Drain, then wait for a wake-up or ``poll_s``; until cancelled. Prunes settled
        rows once an hour."""
        pruned_at = -PRUNE_EVERY_S
        while True:
            self._wake.clear()
            try:
                if time.monotonic() - pruned_at >= PRUNE_EVERY_S:
                    await self.prune()
                    pruned_at = time.monotonic()
                await self.drain()
            except (psycopg.Error, OSError) as err:  # the database is away: try again later
                log.warning("outbox: cannot claim deliveries: %s", err)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_s)

    async def prune(self, keep_days: int = KEEP_DAYS) -> int:
        """Delete settled rows older than ``keep_days``; return how many."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(PRUNE, {"days": keep_days})
            return cur.rowcount

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._client.aclose()

    async def _claim(self) -> list[Delivery]:
        params = {
            "lease": self.config.lease_s,
            "limit": self.batch,
            "kinds": sorted(self.renderers),
            "targets": self.targets,
        }
        async with self.pool.connection() as conn:
            cur = await conn.execute(CLAIM, params)
            return [Delivery(**row) for row in await cur.fetchall()]

    async def _deliver(self, delivery: Delivery) -> None:
        try:
            renderer = self.renderers.get(delivery.kind)
            if renderer is None:
                raise UndeliverableError(f"no renderer for outbox kind {delivery.kind!r} here")
            await self._post(renderer(delivery, self.config))
        except UndeliverableError as err:
            log.warning("outbox: %s %s failed for good: %s", delivery.event, delivery.key, err)
            await self._record(FAILED, delivery, error=str(err))
        except RetryableError as err:
            await self._retry(delivery, str(err))
        except Exception as err:  # a bug in a renderer: logged loudly, retried as bounded
            log.exception("outbox: delivery %s raised", delivery.id)
            await self._retry(delivery, f"{type(err).__name__}: {err}")
        else:
            await self._record(SENT, delivery)

    async def _retry(self, delivery: Delivery, error: str) -> None:
        if delivery.attempts >= self.config.attempts:
            reason = f"gave up after {delivery.attempts} attempts: {error}"
            log.warning("outbox: %s %s: %s", delivery.event, delivery.key, reason)
            await self._record(FAILED, delivery, error=reason)
            return
        await self._record(RETRY, delivery, error=error, delay=backoff_s(delivery.attempts))

    async def _record(self, statement: str, delivery: Delivery, **params: Any) -> None:
        values = {"id": delivery.id, "attempts": delivery.attempts, **params}
        async with self.pool.connection() as conn:
            await conn.execute(statement, values)

    async def _post(self, outgoing: Outgoing) -> None:
        status = await self._send(await self._requests(outgoing))
        if 200 <= status < 300:
            return
        if status == 429 or status >= 500:
            raise RetryableError(f"HTTP {status}")
        note = " (redirects are not followed)" if 300 <= status < 400 else ""
        raise UndeliverableError(f"HTTP {status}{note}")

    async def _send(self, requests: list[httpx.Request]) -> int:
        """The answer's status to the first request that connects (the answer's body is
        neither needed nor trusted: it is not read)."""
        for index, request in enumerate(requests):
            try:
                response = await self._client.send(request, stream=True)
            except httpx.ConnectError as err:
                if index + 1 < len(requests):
                    continue  # the host's next address
                raise RetryableError(f"ConnectError: {err or 'refused'}") from None
            except httpx.HTTPError as err:
                raise RetryableError(f"{type(err).__name__}: {err or 'no answer'}") from None
            await response.aclose()
            return response.status_code
        raise RetryableError("no address to connect to")

    async def _requests(self, outgoing: Outgoing) -> list[httpx.Request]:
        """The request to make; for a guarded one, one per checked address of its host."""
        if not outgoing.guarded:
            return [
                self._client.build_request(
                    "POST", outgoing.url, content=outgoing.body, headers=outgoing.headers
                )
            ]
        allow = self.config.webhook_allow
        try:
            addresses = await asyncio.to_thread(guard.resolve, outgoing.url, allow)
        except guard.WebhookRefusedError as err:
            raise UndeliverableError(str(err)) from None
        url = httpx.URL(outgoing.url)
        headers = {**outgoing.headers, "Host": url.netloc.decode("ascii")}
        extensions = {"sni_hostname": url.host} if url.scheme == "https" else {}
        return [
            self._client.build_request(
                "POST",
                url.copy_with(host=str(address)),
                content=outgoing.body,
                headers=headers,
                extensions=extensions,
            )
            for address in addresses
        ]


@contextlib.asynccontextmanager
async def sending(sender: Sender) -> AsyncIterator[Sender]:
    """``sender.run()`` as a background task for the duration; cancelled and closed after
    (rows in flight stay claimed until their lease runs out, then are sent again)."""
    task = asyncio.create_task(sender.run(), name="outbox-sender")
    try:
        yield sender
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await sender.aclose()


__all__ = ["MAX_DELAY_S", "Pool", "RetryableError", "Sender", "backoff_s", "sending"]
