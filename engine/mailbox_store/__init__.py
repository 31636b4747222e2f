"""Local mail stores for `mail.fetch`: Maildir and mbox writers that never leave a half
message, the state ledger of what was stored, and attachment extraction."""
