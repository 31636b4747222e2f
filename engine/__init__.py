"""xfer: an asyncio transfer engine for FTP, NNTP and mail, driven by YAML job files."""

__version__ = "0.1.0"
