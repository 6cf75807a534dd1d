"""Hop 1 to 3 for a spreadsheet: read the upload, parse it in a bounded worker process,
decide its rows as commands and commit them through the one write transaction."""
