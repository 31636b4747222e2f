"""mail.load sends its messages as they are (`framed=True`: no look for bare CR/LF or
leading dots): every size of the mix and every envelope must come out of
`load_message` exactly as the checking path (`message_body`) would frame it."""

from __future__ import annotations

from xfer.mail.message import load_message
from xfer.protocols._pipeline import message_body


def test_load_messages_need_no_framing() -> None:
    for size in [*range(0, 400), 1024, 1144, 4096, 65536, 1 << 20]:
        for sender, to in [("load@client.test", "a@sink.test"), ("x.y@a.b", "first.last@x.test, .dot@y.test")]:
            data = load_message(token=f"xfer0123456789ab-{size:06d}", envelope_from=sender, to_header=to, size=size)
            assert message_body(data) == message_body(data, framed=True) == data + b".\r\n", size
