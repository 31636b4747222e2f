"""News harvesting logic for the `nntp.scan` kind: pure functions and small writers
(overview parsing, filters, excerpts, threading, outputs, search), no network."""
