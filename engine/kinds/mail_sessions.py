"""`mail.sessions`: IMAP or POP3 session load — many users logging in, reading,
flagging and deleting — with per-command latency, and optionally SMTP delivery at the
same time with the delay users see (`delivery:`, `engine/mail/sessions_delivery.py`).

Each item is one user's session, run on a connection worker: the pool's connect is
the LOGIN (timed, its refusal counted), `engine/mail/sessions_steps.py` runs the
scenario on it and logs out, and the next session of that user logs in anew. Users
are taken in turn from the list. Closed loop (no `logins_per_s`): `sessions` users are
logged in at any time, for `count` sessions or `duration` seconds. Open loop: sessions
are due at `logins_per_s` whatever the server does, at most `sessions` in flight; one
that starts more than `late_after` seconds after its due time is a late start.

Errors are counted, not retried (`retries` defaults to 0): a load test measures the
server. A refused login is a LOGIN NO and a failed session, never a failed run."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

from xfer.errors import PermanentError, PlaintextAuthRefused
from xfer.job import Job, Task, TaskContext
from xfer.mail.message import new_run_id
from xfer.mail.sessions_delivery import Deliver, Deliveries, Reader
from xfer.mail.sessions_stats import SessionStats
from xfer.mail.sessions_steps import ImapScenario, Journal, Pop3Scenario, Scenario, SessionEnded
from xfer.mail.sessions_users import file_users, pattern_users
from xfer.protocols.imap import ImapConnection, ImapConnector
from xfer.protocols.pop3 import Pop3Connection, Pop3Connector
from xfer.urls import Secret, Url

if TYPE_CHECKING:
    from xfer.kinds._spec_mail_sessions import MailSessionsSpec

Mailbox = ImapConnection | Pop3Connection
#: Steps a session takes when the job file gives no weights: reading only.
DEFAULT_WEIGHTS = {
    "imap": {"fetch_headers": 4, "fetch_body": 2, "search": 1},
    "pop3": {"stat": 1, "list": 1, "retr": 4},
}
_END = object()


class TimedLogin:
    """A user's connector whose connect (TCP, greeting, LOGIN) counts as the LOGIN command."""

    def __init__(self, inner: ImapConnector | Pop3Connector, stats: SessionStats) -> None:
        self.inner, self.stats = inner, stats
        self.url, self.endpoint, self.identity = inner.url, inner.endpoint, inner.identity

    async def connect(self) -> Mailbox:
        began = time.monotonic()
        try:
            conn = await self.inner.connect()
        except asyncio.CancelledError:  # the pool's connect timeout, or a stop
            self.stats.command("LOGIN", began, TimeoutError("login cancelled"))
            raise
        except Exception as exc:
            self.stats.command("LOGIN", began, exc)
            raise
        self.stats.command("LOGIN", began)
        return conn


class Session(Task[Mailbox]):
    """One user's session after login; its end (done or failed) is counted once."""

    def __init__(self, job: MailSessions, number: int, late: bool) -> None:
        self.job, self.number = job, number
        self.user = job.users[number % len(job.users)][0]
        self.connector = job.login(number % len(job.users))
        job.stats.session_started(late)

    @property
    def label(self) -> str:
        return f"session {self.number} {self.user}"

    async def run(self, conn: Mailbox | None, ctx: TaskContext) -> dict[str, Any] | None:
        assert conn is not None
        try:
            await self.job.scenario(conn, self.user, self.number).run()
        except SessionEnded as ended:
            self.job.ended(ok=False)
            return {"ended_at": str(ended)}
        self.job.ended(ok=True)
        return None

    def failed(self, error: Exception) -> dict[str, Any] | None:
        self.job.ended(ok=False)
        if isinstance(error, PlaintextAuthRefused):
            raise error  # a setting to change, not a server's answer: the job fails
        return None


class MailSessions(Job):
    kind = "mail.sessions"
    spec: MailSessionsSpec

    def __init__(self, spec: Any, ctx: Any) -> None:
        super().__init__(spec, ctx)
        self.stats = SessionStats()
        self.protocol = "pop3" if spec.server.scheme.startswith("pop3") else "imap"
        self.weights = dict(spec.weights if spec.weights is not None else DEFAULT_WEIGHTS[self.protocol])
        self.users: list[tuple[str, Secret | None]] = []
        self._logins: dict[int, TimedLogin] = {}
        self.inflight = 0
        self._slot = asyncio.Event()
        self.journal: Journal | None = None
        self.deliveries: Deliveries | None = None

    def endpoints(self) -> list[Url]:
        delivery = self.spec.delivery
        return [self.spec.server, *([delivery.smtp] if delivery is not None else [])]

    # -- connections --------------------------------------------------------

    def _connector(self, user: str, password: Secret | None, select: bool) -> ImapConnector | Pop3Connector:
        spec = self.spec
        url = self.ctx.file.with_credentials(spec.server.with_credentials(user, password))
        starttls = None if spec.starttls == "auto" else spec.starttls
        host = self.ctx.file.host_config(url)
        if self.protocol == "pop3":
            return Pop3Connector(url, host, starttls=starttls, timeout=spec.timeout)
        return ImapConnector(url, host, starttls=starttls, timeout=spec.timeout, select=select)

    def login(self, index: int) -> TimedLogin:
        """The session connector of user `index` of the list (made once; its pooled
        sessions are its own: the same address with another password is another user)."""
        found = self._logins.get(index)
        if found is None:
            found = self._logins[index] = TimedLogin(self._connector(*self.users[index], select=False), self.stats)
        return found

    def scenario(self, conn: Mailbox, user: str, number: int) -> Scenario:
        spec = self.spec
        common = (conn, user, self.stats, random.Random(f"{spec.seed}-{number}"), self.weights,
                  spec.commands, spec.think_time, self.journal)
        if isinstance(conn, ImapConnection):
            return ImapScenario(spec.store_flag, *common)
        return Pop3Scenario(*common)

    def ended(self, ok: bool) -> None:
        self.stats.session_ended(ok)
        self.inflight -= 1
        self._slot.set()

    # -- planning -----------------------------------------------------------

    def _load_users(self) -> list[tuple[str, Secret | None]]:
        users = self.spec.users
        if users.pattern is not None:
            return pattern_users(users.pattern, users.count, users.password)
        return file_users(self.ctx.resolve(users.file), users.password)

    async def plan(self) -> AsyncIterator[Task[Any]]:
        spec = self.spec
        self.users = self._load_users()
        if self.ctx.dry_run:
            await self.ctx.with_connection(self.login(0), _nothing, "login")
            return
        self._warn_limits()
        if spec.journal is not None:
            path = self.ctx.resolve(spec.journal)
            path.parent.mkdir(parents=True, exist_ok=True)
            self.journal = Journal(path.open("w", encoding="utf-8"))
        start = time.monotonic()
        self.stats.begin(start)
        sends: Iterator[float] = iter(())
        if spec.delivery is not None:
            self.deliveries = Deliveries(spec.delivery, self.ctx.file, new_run_id(), spec.timeout)
            passwords = dict(reversed(self.users))  # an address listed twice: its first password
            for recipient in spec.delivery.envelope.to:
                if recipient not in passwords:
                    raise PermanentError(f"delivery.envelope.to: {recipient} is not one of the users (readers log in as it)")
                yield Reader(self.deliveries, recipient, self._connector(recipient, passwords[recipient], select=True))
            sends = iter(self.deliveries.schedule(start))
        async for task in self._merge(self._sessions(start), sends):
            yield task

    async def _merge(self, sessions: Iterator[float | None], sends: Iterator[float]) -> AsyncIterator[Task[Any]]:
        """Sessions and sends in due order: a send when due; a session when due (open
        loop) and a slot is free (fewer than `sessions` in flight)."""
        spec, deliveries = self.spec, self.deliveries
        next_session: Any = next(sessions, _END)
        next_send: Any = next(sends, _END)
        number = sent = 0
        while next_session is not _END or next_send is not _END:
            now = time.monotonic()
            if next_send is not _END and next_send <= now:
                deliveries.pending += 1  # type: ignore[union-attr]
                yield Deliver(deliveries, sent)  # type: ignore[arg-type]
                sent += 1
                next_send = next(sends, _END)
                if next_send is _END:
                    deliveries.all_planned()  # type: ignore[union-attr]
                continue
            due = next_session
            if due is not _END and (due is None or due <= now) and self.inflight < spec.sessions:
                self.inflight += 1
                late = due is not None and now - due > spec.late_after
                yield Session(self, number, late)
                number += 1
                next_session = next(sessions, _END)
                continue
            waits = [t - now for t in (next_send, due) if t is not _END and t is not None and t > now]
            self._slot.clear()
            try:
                await asyncio.wait_for(self._slot.wait(), min(waits) if waits else None)
            except TimeoutError:
                pass

    def _sessions(self, start: float) -> Iterator[float | None]:
        """Due times at `logins_per_s` (open loop), or None while the count or duration
        lasts (closed loop: the next session starts when one ends)."""
        spec = self.spec
        if spec.logins_per_s is not None:
            for index in range(int(spec.logins_per_s * spec.duration)):
                yield start + index / spec.logins_per_s
            return
        deadline = start + spec.duration if spec.duration is not None else None
        index = 0
        while (spec.count is None or index < spec.count) and (deadline is None or time.monotonic() < deadline):
            yield None
            index += 1

    def _warn_limits(self) -> None:
        spec, file = self.spec, self.ctx.file
        wanted = spec.sessions + (len(spec.delivery.envelope.to) if spec.delivery is not None else 0)
        limit = file.host_limit(spec.server)
        if wanted > limit:
            self.ctx.emit("job.note", data={
                "warning": f"{wanted} sessions (readers included) are capped by the host limit of {limit} "
                f"connections for {spec.server.endpoint} (raise hosts.{spec.server.host}.max_connections)",
            })
        if wanted > file.defaults.max_connections:
            self.ctx.emit("job.note", data={
                "warning": f"{wanted} sessions are capped by defaults.max_connections "
                f"({file.defaults.max_connections} connections in use across all hosts)",
            })

    # -- the end ------------------------------------------------------------

    async def finish(self) -> None:
        if self.journal is not None:
            self.journal.close()

    def summary(self) -> dict[str, Any]:
        spec = self.spec
        out = {
            "protocol": self.protocol,
            "mode": "open" if spec.logins_per_s else "closed",
            "offered_logins_per_s": spec.logins_per_s,
            "concurrency": spec.sessions,
            "users": len(self.users),
            "weights": self.weights,
            **self.stats.summary(),
        }
        if self.deliveries is not None:
            out["delivery"] = self.deliveries.summary()
        return out


async def _nothing(_conn: object) -> None:
    """A dry run only proves that connecting and logging in work."""
