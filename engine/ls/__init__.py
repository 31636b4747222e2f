"""`xfer ls URL`: look at a server before writing a job for it.

One module a protocol (`ftp`, `news`, `mail`), each returning a `Listing` of rows
(`listing.py`), printed as a table or JSON (`output.py`); `command.py` resolves the
URL's credentials (URL, `--jobs` host block, ~/.netrc) and host settings the way a
run does, and turns failures into one line on stderr. Nothing is written anywhere."""
