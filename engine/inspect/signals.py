"""The spam and phishing rules. Each rule reads a `Mail` and yields `Signal`s that
carry their evidence (the header value or link that made it fire), so a reader can
judge the verdict rather than trust it.

Score: the sum, over the rules that fired, of each rule's weight (a rule that fires
on ten links counts once). Weights are rough log-odds guesses: 1 = common in
legitimate bulk mail too, 2 = unusual for honest mail, 3-4 = a phishing technique
with little innocent use. Tune them here; nothing else hard-codes them."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from xfer.inspect.headers import Headers
from xfer.inspect.hosts import latin_skeleton, mixed_script_labels, org_domain, parse_ip, unicode_host
from xfer.inspect.links import Link

W_MALFORMED = 1  #: a header the parser flagged or could not read (spamware often writes broken headers)
W_BULK_MAILER = 1  #: X-Mailer/User-Agent of a mass-mailing tool (newsletters use them too)
W_SUSPICIOUS_MAILER = 2  #: a mailer favoured by spam/phishing kits, or a forged ancient client
W_MESSAGE_ID_MISSING = 2  #: no Message-ID: every real MTA/MUA adds one
W_MESSAGE_ID_SYNTAX = 2  #: Message-ID not of the RFC 5322 form <left@right>
W_MESSAGE_ID_DOMAIN = 1  #: Message-ID right-hand side in another organization than From
W_RETURN_PATH_MISMATCH = 1  #: bounces go elsewhere than From (normal for mailing services)
W_REPLY_TO_MISMATCH = 2  #: replies go to another organization than the apparent sender
W_RECEIVED_MISMATCH = 1  #: the first relay is not in the sender's organization
W_DISPLAY_NAME_SPOOF = 3  #: the From display name shows one address, the real one is elsewhere
W_AUTH_WARNING = 2  #: X-Authentication-Warning: a relay saw the sender claim another identity
W_LINK_TEXT_MISMATCH = 4  #: a link shows one domain and goes to another
W_LINK_RAW_IP = 3  #: a link to a bare IP address (dotted, integer, hex or octal)
W_PUNYCODE = 2  #: an xn-- (internationalized) domain in a link or sender address
W_MIXED_SCRIPT = 4  #: a domain label mixing scripts, or spelling a Latin word in look-alikes

#: Substrings (lower case) of X-Mailer/User-Agent values.
BULK_MAILERS = (
    "mailchimp", "sendblaster", "groupmail", "atomic mail sender", "mailking", "mass mailer",
    "massmail", "bulk", "mailerlite", "sendinblue", "ezmlm", "mailjet", "supermailer", "newsletter",
)
SUSPICIOUS_MAILERS = (
    "phpmailer", "send-safe", "darkmailer", "dark mailer", "advanced mass sender", "turbo-mailer",
    "microsoft outlook express 5", "microsoft outlook express 6", "the bat! (v1.", "php/",
)

_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_DOT_ATOM = rf"{_ATEXT}(?:\.{_ATEXT})*"
_MESSAGE_ID = re.compile(rf"^\s*<({_DOT_ATOM})@({_DOT_ATOM}|\[[^\[\]\\\s]*\])>\s*$")
_RECEIVED_FROM = re.compile(r"^\s*from\s+(\S+)(?:\s+\(([^)]*)\))?", re.IGNORECASE)
_NAME_IN_PARENS = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9.-]*\.[A-Za-z]{2,})\b")
_CLIENT_IP = re.compile(r"\[([0-9A-Fa-f.:]+)\]")
_ADDRESS_IN_TEXT = re.compile(r"[^\s<>@\"']+@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)")

#: Top-level names of home and office networks, never a sender's public domain.
PRIVATE_TLDS = frozenset({"lan", "local", "localdomain", "localhost", "home", "internal", "intranet", "corp", "private"})

LOCAL_NETWORKS = tuple(
    ipaddress.ip_network(net) for net in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
)

#: How much evidence one signal shows before "(+N more)".
MAX_EVIDENCE_ITEMS = 5
#: Signals kept per rule and message (a spam with 500 IP links needs no 500 lines).
MAX_SIGNALS_PER_RULE = 10


@dataclass(frozen=True)
class Signal:
    """One rule firing once: its name, its weight in the score, and what it saw."""

    rule: str
    weight: int
    evidence: str


@dataclass
class Mail:
    """What the rules look at: the headers and the body's links."""

    headers: Headers
    links: list[Link] = field(default_factory=list)

    @property
    def from_domain(self) -> str | None:
        return self.headers.domain("from")


Rule = Callable[[Mail], Iterable[Signal]]


def malformed(mail: Mail) -> Iterator[Signal]:
    problems = mail.headers.problems
    if problems:
        shown = "; ".join(problems[:MAX_EVIDENCE_ITEMS])
        more = len(problems) - MAX_EVIDENCE_ITEMS
        yield Signal("malformed-header", W_MALFORMED, shown + (f" (+{more} more)" if more > 0 else ""))


def mailer(mail: Mail) -> Iterator[Signal]:
    for name in ("X-Mailer", "User-Agent"):
        for value in mail.headers.all(name):
            lowered = value.lower()
            if any(marker in lowered for marker in SUSPICIOUS_MAILERS):
                yield Signal("suspicious-mailer", W_SUSPICIOUS_MAILER, f"{name}: {value}")
            elif any(marker in lowered for marker in BULK_MAILERS):
                yield Signal("bulk-mailer", W_BULK_MAILER, f"{name}: {value}")


def message_id(mail: Mail) -> Iterator[Signal]:
    value = mail.headers.get("Message-ID")
    if value is None or not value.strip():
        yield Signal("message-id-missing", W_MESSAGE_ID_MISSING, "no Message-ID header")
        return
    match = _MESSAGE_ID.match(value)
    if match is None:
        yield Signal("message-id-syntax", W_MESSAGE_ID_SYNTAX, f"Message-ID: {value} (not <left@right>)")
        return
    right, sender = match.group(2).strip("[]"), mail.from_domain
    if not _public_name(right):
        return  # `<id@[10.1.2.3]>` or `<id@laptop.local>`: mail clients name their machine, not a domain
    if sender and org_domain(right) != org_domain(sender):
        yield Signal("message-id-domain", W_MESSAGE_ID_DOMAIN, f"Message-ID domain {right} vs From domain {sender}")


def _public_name(host: str) -> bool:
    """A dotted name under a public top-level domain (not an address, not `laptop.local`)."""
    host = host.rstrip(".").lower()
    return "." in host and parse_ip(host) is None and host.rsplit(".", 1)[1] not in PRIVATE_TLDS


def _differs(sender: str | None, other: str | None) -> bool:
    return bool(sender and other) and org_domain(sender) != org_domain(other)  # type: ignore[arg-type]


def sender_domains(mail: Mail) -> Iterator[Signal]:
    sender = mail.from_domain
    for header, rule, weight in (
        ("Return-Path", "return-path-mismatch", W_RETURN_PATH_MISMATCH),
        ("Reply-To", "reply-to-mismatch", W_REPLY_TO_MISMATCH),
    ):
        other = mail.headers.domain(header)
        if _differs(sender, other):
            yield Signal(rule, weight, f"{header} domain {other} vs From domain {sender}")
    relay = first_relay(mail.headers.all("Received"))
    if _differs(sender, relay):
        yield Signal("received-mismatch", W_RECEIVED_MISMATCH, f"first Received from {relay} vs From domain {sender}")


def first_relay(received: list[str]) -> str | None:
    """The host name that handed the message to the first outside relay: in the
    oldest Received header that names one, its reverse-DNS name, else its HELO name.
    Hops from a loopback or private address (a laptop submitting to its own
    server) and names without a public top-level domain are skipped."""
    for value in reversed(received):
        match = _RECEIVED_FROM.match(value)
        if not match:
            continue
        details = match.group(2) or ""
        client = _CLIENT_IP.search(details)
        client_ip = parse_ip(client.group(1)) if client else None
        if client_ip is not None and is_local_network(client_ip[0]):
            continue
        rdns = _NAME_IN_PARENS.match(details)
        for host in ([rdns.group(1)] if rdns else []) + [match.group(1)]:
            host = host.strip("[]").rstrip(".").lower()
            if _public_name(host):
                return host
    return None


def is_local_network(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Loopback, link-local, RFC 1918 or IPv6 unique-local: a hop inside the sender's own site.
    (Not `is_private`, which also counts the documentation ranges used in examples.)"""
    return address.is_loopback or address.is_link_local or any(address in net for net in LOCAL_NETWORKS)


def display_name_spoof(mail: Mail) -> Iterator[Signal]:
    for address in mail.headers.addresses("From"):
        shown = _ADDRESS_IN_TEXT.search(address.display_name or "")
        if shown and address.domain and _differs(address.domain, shown.group(1)):
            yield Signal(
                "from-display-spoof", W_DISPLAY_NAME_SPOOF, f"display name shows {shown.group(0)}, address is {address.addr_spec}"
            )


def auth_warning(mail: Mail) -> Iterator[Signal]:
    for value in mail.headers.all("X-Authentication-Warning"):
        yield Signal("x-authentication-warning", W_AUTH_WARNING, value)


def link_text_mismatch(mail: Mail) -> Iterator[Signal]:
    for link in mail.links:
        shown, target = link.text_host, link.host
        if _differs(target, shown):
            yield Signal("link-text-mismatch", W_LINK_TEXT_MISMATCH, f"text shows {shown}, link goes to {target} ({link.href})")


def link_raw_ip(mail: Mail) -> Iterator[Signal]:
    for link in mail.links:
        parsed = parse_ip(link.host or "")
        if parsed is not None:
            address, form = parsed
            yield Signal("link-raw-ip", W_LINK_RAW_IP, f"{link.href} -> {address} ({form})")


def lookalike_domains(mail: Mail) -> Iterator[Signal]:
    """Punycode and mixed-script names in links and in the From/Reply-To domains."""
    places = [("link", link.host, link.href) for link in mail.links]
    places += [(header, mail.headers.domain(header), None) for header in ("From", "Reply-To")]
    for where, host, href in places:
        if not host or parse_ip(host) is not None:
            continue
        shown = href or host
        decoded = unicode_host(host)
        if decoded is not None:
            yield Signal("punycode-domain", W_PUNYCODE, f"{where} {shown}: {host} is {decoded}")
        readable = decoded if decoded is not None else host
        for label in mixed_script_labels(readable):
            yield Signal("mixed-script-domain", W_MIXED_SCRIPT, f"{where} {shown}: label {label}")
        for label in readable.split("."):
            skeleton = latin_skeleton(label)
            if skeleton:
                yield Signal("mixed-script-domain", W_MIXED_SCRIPT, f"{where} {shown}: label {label} imitates '{skeleton}'")


RULES: tuple[Rule, ...] = (
    malformed, mailer, message_id, sender_domains, display_name_spoof, auth_warning,
    link_text_mismatch, link_raw_ip, lookalike_domains,
)


def evaluate(mail: Mail, rules: Iterable[Rule] = RULES) -> list[Signal]:
    """Every rule's signals, duplicates dropped, at most MAX_SIGNALS_PER_RULE each.
    A rule that trips over a hostile message becomes a 'malformed-header' signal
    instead of an exception: the listing must go on whatever one message contains."""
    found: list[Signal] = []
    for rule in rules:
        try:
            signals = list(dict.fromkeys(rule(mail)))
        except Exception as exc:  # any crash in the email package on hostile input
            signals = [Signal("malformed-header", W_MALFORMED, f"{rule.__name__} gave up: {type(exc).__name__}")]
        for name in dict.fromkeys(signal.rule for signal in signals):
            same = [signal for signal in signals if signal.rule == name]
            found.extend(same[:MAX_SIGNALS_PER_RULE])
            if len(same) > MAX_SIGNALS_PER_RULE:
                found.append(Signal(name, same[0].weight, f"(+{len(same) - MAX_SIGNALS_PER_RULE} more)"))
    return found


def score(signals: Iterable[Signal]) -> int:
    """Sum of the weights of the rules that fired, each rule counted once."""
    weights: dict[str, int] = {}
    for signal in signals:
        weights[signal.rule] = max(weights.get(signal.rule, 0), signal.weight)
    return sum(weights.values())
