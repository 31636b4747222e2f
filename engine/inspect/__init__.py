"""`xfer mail inspect`: list what came into an mbox or Maildir and flag spam and
phishing signals, offline (no DNS, no URL fetches), from headers and links alone.

reading (mailbox -> raw messages) -> headers (defect-tolerant header access) and
links (URLs in text/html parts) -> signals (the rules and the score) -> message
(one record per message) -> cli (table or JSON)."""
