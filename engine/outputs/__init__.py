"""Things that read the event stream and show or store it."""
