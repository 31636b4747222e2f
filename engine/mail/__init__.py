"""Mail testing shared by `mail.roundtrip` and `mail.load`: messages, comparison, latency, reports."""
