"""Shared test helpers: read a file through the real tailer and parser."""

from __future__ import annotations

from collections.abc import Iterable

from sfttop.core.diagnose import Diagnoser
from sfttop.core.discover import logging_steps_near
from sfttop.core.parse import LogParser
from sfttop.core.records import Event, Item, Record, expand
from sfttop.core.series import RunData
from sfttop.core.tail import FileTail


def read_all(
    path: str, budget: int = 1 << 16, use_state: bool = True, blocks: bool = True
) -> tuple[LogParser, RunData, list[Record], list[Event]]:
    tail = FileTail(path)
    parser = LogParser(blocks=blocks)
    if use_state:
        parser.interval = logging_steps_near(path)
    data = RunData()
    records: list[Record] = []
    events: list[Event] = []
    while True:
        chunk = tail.poll(budget)
        recs: list[Item] = []
        if chunk.data:
            parser.feed_chunk(chunk.data, chunk.base, recs, events)
        parser.flush(recs, final=chunk.eof)
        for r in recs:
            data.add(r)
        records.extend(expand(recs))
        if chunk.eof and not chunk.grew:
            break
    tail.close()
    return parser, data, records, events


def parse_lines(lines: list[bytes]) -> tuple[LogParser, list[Record], list[Event]]:
    parser = LogParser()
    recs: list[Record] = []
    evs: list[Event] = []
    off = 0
    for line in lines:
        parser.feed(line, off, recs, evs)
        off += len(line) + 1
    parser.flush(recs)
    return parser, recs, evs


def diagnose_all(records: Iterable[Record]) -> tuple[RunData, Diagnoser]:
    """Store and diagnose records in order, as a Run does (without a file)."""
    data, diag = RunData(), Diagnoser()
    for r in records:
        data.add(r)
        diag.observe(r)
    return data, diag
