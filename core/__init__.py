"""sfttop's engine: discovery, tailing, parsing, series, diagnosis, reports.

Nothing in this package imports Textual or Rich, so it can be used headless, from scripts and
from CI; the TUI only renders the state built here.
"""
