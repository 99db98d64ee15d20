#!/usr/bin/env python3
"""Diagnosis scoreboard: sfttop's findings on real logs against labels read from their numbers.

``bench/diagnosis_labels.json`` labels every real log the project has (``tests/fixtures`` and the
public logs in ``../shared/logs``) with the pathologies a careful reader sees in its numbers and
the first step at which each shows. This script builds the report ``sfttop --report --format
json`` prints for each labelled log and prints, per log, what was expected and what sfttop found,
then the totals:

  named       expected pathologies sfttop names (with a code of the pathology's family)
  weak        ... of them named only at a lower severity than the pathology deserves
  missed      expected pathologies no finding names
  false W/C   warning / critical findings (episodes) that name no expected pathology
  over        pathologies the label calls warning-worth that sfttop raised as critical
  delay       steps from the first bad record to the first finding that names it
  liveness    run_stalled findings that name no expected pathology (listed apart, see below)

Info findings are not scored. Each report is built in this process (``sfttop.core.report.build``,
what ``--report`` runs) with the default config and "now" a day after the log's last
write, so the figures do not depend on when this copy was made. ``run_stalled`` speaks of the
file's age, not of its numbers: a day on, every log without a finish marker reads as stalled. It
names an expected ``run_stopped``; elsewhere it is counted apart as ``liveness``, not as a false
warning. A log marked ``uncertain`` in the labels is a judgement call; it is
scored like the others and flagged ``?``.

``--epokio PYTHON`` also runs epokio (https://pypi.org/project/epokio/, the one peer that
diagnoses) with that interpreter, as a subprocess so that epokio never becomes a dependency of
this project, on every labelled run whose directory holds a ``trainer_state.json``; its notes
(``epokio.rundetail.detail(run_dir)["notes"]``) are mapped to codes by their wording and scored
the same way, side by side with sfttop on the same runs. epokio's notes carry neither a severity
nor, mostly, a step: they count as warnings, and their delay is not measured.

It is a measurement, not a test: the exit status is 0 whatever the score.

    python bench/scoreboard.py                                  # per log, then the totals
    python bench/scoreboard.py --markdown                       # the README table
    python bench/scoreboard.py --epokio /tmp/epokio-venv/bin/python [--markdown]
    python bench/scoreboard.py --fixtures tests/fixtures --shared ../shared/logs
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
LABELS = HERE / "diagnosis_labels.json"

RANK = {"info": 0, "warning": 1, "critical": 2}
ARCHIVE_AGE = 86400.0  # seconds between a log's last write and the scoreboard's "now"

# A pathology is named by any code of its family: the labels speak of what the numbers show, and
# more than one code can say it (a divergence first seen as a gradient explosion is still named).
# Codes the rules may grow (divergence, training_unstable) are listed so a new rule scores at once.
# Each family's default severity is what the pathology deserves; a label can override it.
FAMILIES: dict[str, tuple[str, frozenset[str]]] = {
    "loss_nonfinite": ("critical", frozenset({"loss_nonfinite"})),
    "nothing_trained": ("critical", frozenset({"nothing_trained", "grad_vanishing"})),
    "grad_explosion": ("critical", frozenset({"grad_explosion", "grad_norm_high", "divergence", "loss_divergence"})),
    # loss_oscillation / grad_norm_high on a diverging run name it, as warnings: "weak".
    "divergence": (
        "critical",
        frozenset(
            {
                "divergence",
                "loss_divergence",
                "training_diverged",
                "grad_explosion",
                "loss_nonfinite",
                "loss_oscillation",
                "grad_norm_high",
            }
        ),
    ),
    "training_unstable": (
        "warning",
        frozenset({"training_unstable", "instability", "loss_oscillation", "divergence", "loss_divergence"}),
    ),
    "overfitting": ("warning", frozenset({"overfitting", "overfitting_severe"})),
    "loss_plateau": ("warning", frozenset({"loss_plateau"})),
    "lr_too_large": ("warning", frozenset({"lr_too_large"})),
    "lr_too_small": ("warning", frozenset({"lr_too_small"})),
    "grad_vanishing": ("warning", frozenset({"grad_vanishing"})),
    "run_crashed": ("critical", frozenset({"run_crashed"})),
    "run_stopped": ("warning", frozenset({"run_stalled", "run_crashed"})),
}


def family(code: str) -> frozenset[str]:
    return FAMILIES[code][1] | {code} if code in FAMILIES else frozenset({code})


# Findings about the file's age rather than its numbers (see the module docstring).
LIVENESS = frozenset({"run_stalled"})


@dataclass(frozen=True)
class Expected:
    code: str
    step: int
    severity: str
    # The label itself says how bad it is (otherwise the family's default): only then is a
    # critical finding for a warning-worth pathology counted as over-severe.
    explicit: bool = False


@dataclass(frozen=True)
class Found:
    code: str
    severity: str
    step: int | None
    text: str = ""


@dataclass
class Label:
    root: str
    path: str
    expect: list[Expected]
    reason: str
    ok: frozenset[str] = frozenset()
    uncertain: bool = False

    @property
    def name(self) -> str:
        return f"{self.root}:{self.path}"


@dataclass
class Score:
    named: list[tuple[Expected, int | None, bool, bool]] = field(default_factory=list)  # (e, delay, weak, over)
    missed: list[Expected] = field(default_factory=list)
    false_warnings: list[Found] = field(default_factory=list)
    false_criticals: list[Found] = field(default_factory=list)
    liveness: list[Found] = field(default_factory=list)


def load_labels(path: Path = LABELS) -> list[Label]:
    doc = json.loads(path.read_text(encoding="utf-8"))
    out = []
    for e in doc["logs"]:
        expect = [
            Expected(
                x["code"],
                int(x["step"]),
                x.get("severity") or FAMILIES.get(x["code"], ("warning",))[0],
                "severity" in x,
            )
            for x in e.get("expect", [])
        ]
        out.append(
            Label(e["root"], e["path"], expect, e["reason"], frozenset(e.get("ok", [])), bool(e.get("uncertain")))
        )
    return out


def score(label: Label, found: Sequence[Found]) -> Score:
    s = Score()
    alarms = [f for f in found if RANK.get(f.severity, 0) >= RANK["warning"]]
    for e in label.expect:
        fam = family(e.code)
        hits = [f for f in alarms if f.code in fam]
        if not hits:
            s.missed.append(e)
            continue
        steps = [f.step for f in hits if f.step is not None]
        delay = min(steps) - e.step if steps else None
        top = max(RANK[f.severity] for f in hits)
        s.named.append((e, delay, top < RANK[e.severity], e.explicit and top > RANK[e.severity]))
    covered = set(label.ok).union(*(family(e.code) for e in label.expect))
    for f in alarms:
        if f.code in covered:
            continue
        if f.code in LIVENESS:
            s.liveness.append(f)
        else:
            (s.false_criticals if f.severity == "critical" else s.false_warnings).append(f)
    return s


# ---------------------------------------------------------------------------------------- sfttop


def last_write(path: Path) -> float:
    """When the log (or the newest file of a log directory) was last written."""
    if path.is_dir():
        return max((f.stat().st_mtime for f in path.rglob("*") if f.is_file()), default=path.stat().st_mtime)
    return path.stat().st_mtime


def sfttop_findings(path: Path) -> tuple[list[Found], str]:
    """The findings ``sfttop --report --format json PATH`` prints (every run it reads there), and
    a note when it could not read the log. The report is built in this process with the default
    config, "now" a day after the log's last write: the archived log as anyone reads it later,
    whatever the age of this copy (so ``run_stalled`` does not depend on when the checkout was made)."""
    from sfttop.core.config import Config
    from sfttop.core.report import build

    now = last_write(path) + ARCHIVE_AGE
    unread: list[str] = []
    try:
        doc, _code = build([str(path)], Config(), clock=lambda: now, unread=unread)
    except Exception as e:  # one log sfttop cannot read is a result, not the end of the measurement
        return [], f"sfttop failed: {e!r}"[:120]
    found = [
        Found(f["code"], f["severity"], f.get("step"), f.get("message", ""))
        for run in doc.get("runs", [])
        for f in run.get("findings", [])
    ]
    return found, "; ".join(unread)[:120] if not doc.get("runs") else ""


# ---------------------------------------------------------------------------------------- epokio

_EPOKIO_SCRIPT = r"""
import json, sys
from pathlib import Path
from epokio.rundetail import detail
out = {}
for d in json.load(sys.stdin):
    try:
        got = detail(Path(d))
    except Exception as e:  # a peer's failure is a result, not a crash of the scoreboard
        out[d] = {"error": repr(e)[:200]}
        continue
    out[d] = None if got is None else {"notes": [n.get("observation") or "" for n in got.get("notes") or []]}
sys.stdout.write("\n" + json.dumps(out) + "\n")
"""

# epokio's notes (its analysis.py, English) -> codes. Order matters: the first match wins.
_EPOKIO_NOTES: tuple[tuple[str, str | None], ...] = (
    (r"became nan", "loss_nonfinite"),
    (r"training became unstable", "divergence"),
    (r"has been rising since", "training_unstable"),
    (r"overfitting|validation loss bottomed|validation loss rose", "overfitting"),
    (r"stopped improving|added nothing|never moved", "loss_plateau"),
    (r"best score came very early", "lr_too_large"),
    (r"still improving|still rising|precision .* recall|recall .* precision", None),  # not a pathology
)
_EPOKIO_STEP = re.compile(r"(?:became nan at|rising since) (?:step|epoch) (\d+)", re.IGNORECASE)


def epokio_code(note: str) -> str | None:
    low = note.lower()
    for pattern, code in _EPOKIO_NOTES:
        if re.search(pattern, low):
            return code
    return "epokio_other"


def epokio_run_dir(path: Path) -> Path | None:
    """The run directory epokio reads for a labelled log: the one holding its trainer_state.json."""
    d = path if path.is_dir() else path.parent
    if (d / "trainer_state.json").is_file() or any(d.glob("checkpoint-*/trainer_state.json")):
        return d
    return None


def epokio_findings(python: str, dirs: Iterable[Path]) -> dict[str, tuple[list[Found], str]]:
    todo = sorted({str(d) for d in dirs})
    env = {**os.environ, "LC_ALL": "C", "LC_MESSAGES": "C", "LANG": "C"}  # epokio's English notes
    p = subprocess.run(
        [python, "-c", _EPOKIO_SCRIPT], input=json.dumps(todo), capture_output=True, text=True, timeout=1800, env=env
    )
    if p.returncode != 0:
        raise SystemExit(f"epokio ({python}) failed: {p.stderr.strip()[-500:]}")
    got: dict[str, Any] = json.loads(p.stdout.strip().splitlines()[-1])
    out: dict[str, tuple[list[Found], str]] = {}
    for d, r in got.items():
        if r is None:
            out[d] = ([], "epokio reads no run here")
        elif "error" in r:
            out[d] = ([], r["error"])
        else:
            found = []
            for note in r["notes"]:
                code = epokio_code(note)
                if code is None:
                    continue
                m = _EPOKIO_STEP.search(note)
                found.append(Found(code, "warning", int(m.group(1)) if m else None, note))
            out[d] = (found, "")
    return out


# ---------------------------------------------------------------------------------------- output


@dataclass
class Totals:
    logs: int = 0
    expected: int = 0
    named: int = 0
    weak: int = 0
    over: int = 0
    missed: int = 0
    false_warnings: int = 0
    false_criticals: int = 0
    liveness: int = 0
    healthy: int = 0
    healthy_clean: int = 0
    delays: list[int] = field(default_factory=list)
    false_by_code: Counter[str] = field(default_factory=Counter)  # code -> false episodes
    missed_by_code: Counter[str] = field(default_factory=Counter)

    def add(self, label: Label, s: Score) -> None:
        self.logs += 1
        self.expected += len(label.expect)
        self.named += len(s.named)
        self.weak += sum(1 for _e, _d, weak, _o in s.named if weak)
        self.over += sum(1 for _e, _d, _w, over in s.named if over)
        self.missed += len(s.missed)
        self.false_warnings += len(s.false_warnings)
        self.false_criticals += len(s.false_criticals)
        self.liveness += len(s.liveness)
        self.false_by_code.update(f.code + ("!" if f.severity == "critical" else "") for f in s.false_warnings)
        self.false_by_code.update(f.code + "!" for f in s.false_criticals)
        self.missed_by_code.update(e.code for e in s.missed)
        self.delays.extend(d for _e, d, _w, _o in s.named if d is not None)
        if not label.expect:
            self.healthy += 1
            self.healthy_clean += not (s.false_warnings or s.false_criticals)

    def by_code(self, counts: Counter[str]) -> str:
        return ", ".join(f"{code} {n}" for code, n in counts.most_common()) or "-"

    def delay_text(self) -> str:
        late = [d for d in self.delays if d > 0]
        if not self.delays:
            return "-"
        return f"median {statistics.median(self.delays):g}, {len(late)} late (max {max(self.delays)})"


def _codes(items: Iterable[Expected]) -> str:
    return ", ".join(f"{e.code}@{e.step}" for e in items) or "healthy"


def _found_text(found: Sequence[Found]) -> str:
    alarms = [f for f in found if RANK.get(f.severity, 0) >= 1]
    seen: dict[str, tuple[str, int | None, int]] = {}
    for f in alarms:
        sev, step, n = seen.get(f.code, (f.severity, f.step, 0))
        first = step if f.step is None or (step is not None and step <= f.step) else f.step
        seen[f.code] = (max(sev, f.severity, key=RANK.__getitem__), first, n + 1)
    parts = []
    for code, (sev, step, n) in seen.items():
        mark = "!" if sev == "critical" else ""
        parts.append(f"{code}{mark}@{step if step is not None else '?'}" + (f" x{n}" if n > 1 else ""))
    return ", ".join(parts) or "-"


def _verdict(s: Score) -> str:
    bits = []
    for e, d, weak, over in s.named:
        tag = (
            f"{e.code} named"
            + (f" +{d}" if d and d > 0 else "")
            + (" (weak)" if weak else "")
            + (" (over)" if over else "")
        )
        bits.append(tag)
    bits += [f"{e.code} MISSED" for e in s.missed]
    if s.false_criticals:
        bits.append(
            f"{len(s.false_criticals)} false critical ({', '.join(sorted({f.code for f in s.false_criticals}))})"
        )
    if s.false_warnings:
        bits.append(f"{len(s.false_warnings)} false warning ({', '.join(sorted({f.code for f in s.false_warnings}))})")
    if s.liveness:
        bits.append("stalled by file age")
    return "; ".join(bits) or "clean"


def print_text(rows: Sequence[tuple[Label, list[Found], str, Score]], tool: str) -> None:
    for label, found, note, s in rows:
        print(f"{'?' if label.uncertain else ' '} {label.name}")
        print(f"    expected: {_codes(label.expect)}")
        print(f"    {tool:<8}: {_found_text(found)}" + (f"   [{note}]" if note else ""))
        print(f"    score   : {_verdict(s)}")


def totals_lines(t: Totals, tool: str) -> list[str]:
    return [
        f"{tool}: {t.logs} logs, {t.expected} labelled pathologies",
        f"  named             {t.named}/{t.expected}  (weak: {t.weak}, over: {t.over})",
        f"  missed            {t.missed}",
        f"  false warnings    {t.false_warnings}",
        f"  false criticals   {t.false_criticals}",
        f"  liveness          {t.liveness}  (run_stalled from the file's age, not counted as false)",
        f"  false, by code    {t.by_code(t.false_by_code)}",
        f"  missed, by code   {t.by_code(t.missed_by_code)}",
        f"  healthy logs      {t.healthy_clean}/{t.healthy} without a false alarm",
        f"  delay (steps)     {t.delay_text()}",
    ]


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|")


def print_markdown(
    rows: Sequence[tuple[Label, list[Found], str, Score]],
    totals: Totals,
    peer: dict[str, tuple[list[Found], str, Score]] | None,
    peer_totals: Totals | None,
    sub_totals: Totals | None,
) -> None:
    cols = [(f"sfttop, all {totals.logs} logs", totals)]
    if peer_totals is not None and sub_totals is not None:
        cols += [
            (f"sfttop, the {sub_totals.logs} `trainer_state.json` runs", sub_totals),
            ("epokio, the same runs", peer_totals),
        ]
    _md_totals(cols)
    print()
    print("<details><summary>Per log: expected (first bad step) and found (first step, ! critical)</summary>")
    print()
    head = "| log | expected | sfttop found | sfttop score |"
    print(head + (" epokio found → score |" if peer is not None else ""))
    print("|---|---|---|---|" + ("---|" if peer is not None else ""))
    for label, found, note, s in rows:
        name = ("? " if label.uncertain else "") + f"`{label.path}`"
        got = _found_text(found) + (f" ({note[:60]})" if note else "")
        line = f"| {_md_cell(name)} | {_md_cell(_codes(label.expect))} | {_md_cell(got)} | {_md_cell(_verdict(s))} |"
        if peer is not None:
            if label.name in peer:
                pf, pnote, ps = peer[label.name]
                line += f" {_md_cell(_found_text(pf) + (f' ({pnote[:60]})' if pnote else '') + ' → ' + _verdict(ps))} |"
            else:
                line += " |"
        print(line)
    print()
    print("</details>")


def _md_totals(cols: Sequence[tuple[str, Totals]]) -> None:
    print("| | " + " | ".join(name for name, _ in cols) + " |")
    print("|---|" + "---|" * len(cols))
    rows: list[tuple[str, Callable[[Totals], str]]] = [
        ("logs", lambda t: str(t.logs)),
        ("pathologies named", lambda t: f"{t.named} of {t.expected}"),
        ("… at a lower severity than deserved", lambda t: str(t.weak)),
        ("… as critical where the label says a warning", lambda t: str(t.over)),
        ("missed", lambda t: str(t.missed)),
        ("false warnings", lambda t: str(t.false_warnings)),
        ("false criticals", lambda t: str(t.false_criticals)),
        ("stalled by file age (not counted)", lambda t: str(t.liveness)),
        ("false alarms by code (! critical)", lambda t: t.by_code(t.false_by_code)),
        ("missed by code", lambda t: t.by_code(t.missed_by_code)),
        ("healthy logs with no false alarm", lambda t: f"{t.healthy_clean} of {t.healthy}"),
        ("delay after the first bad record (steps)", lambda t: t.delay_text()),
    ]
    for title, fn in rows:
        print(f"| {title} | " + " | ".join(fn(t) for _, t in cols) + " |")


def resolve(label: Label, roots: dict[str, Path | None]) -> Path | None:
    root = roots.get(label.root)
    return None if root is None else root / label.path


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fixtures", type=Path, default=REPO / "tests" / "fixtures", help="root of 'fixtures' labels")
    default_shared = REPO.parent / "shared" / "logs"
    ap.add_argument(
        "--shared",
        type=Path,
        default=default_shared if default_shared.is_dir() else None,
        help="root of 'shared' labels (default ../shared/logs if it exists)",
    )
    ap.add_argument("--labels", type=Path, default=LABELS)
    ap.add_argument("--markdown", action="store_true", help="print the README tables")
    ap.add_argument("--epokio", metavar="PYTHON", help="also score epokio, run with this interpreter")
    ap.add_argument("--select", metavar="TEXT", help="only the labelled logs whose root:path contains TEXT")
    args = ap.parse_args(argv)

    roots: dict[str, Path | None] = {"fixtures": args.fixtures, "shared": args.shared}
    rows: list[tuple[Label, list[Found], str, Score]] = []
    totals = Totals()
    skipped: list[str] = []
    paths: dict[str, Path] = {}
    for label in load_labels(args.labels):
        if args.select and args.select not in label.name:
            continue
        path = resolve(label, roots)
        if path is None or not path.exists():
            skipped.append(label.name)
            continue
        paths[label.name] = path
        found, note = sfttop_findings(path)
        s = score(label, found)
        rows.append((label, found, note, s))
        totals.add(label, s)

    peer: dict[str, tuple[list[Found], str, Score]] | None = None
    peer_totals = sub_totals = None
    if args.epokio:
        dirs = {name: d for name, p in paths.items() if (d := epokio_run_dir(p)) is not None}
        by_dir = epokio_findings(args.epokio, dirs.values())
        peer, peer_totals, sub_totals = {}, Totals(), Totals()
        for label, _found, _note, s in rows:
            if label.name not in dirs:
                continue
            pf, pnote = by_dir[str(dirs[label.name])]
            ps = score(label, pf)
            peer[label.name] = (pf, pnote, ps)
            peer_totals.add(label, ps)
            sub_totals.add(label, s)

    if args.markdown:
        print_markdown(rows, totals, peer, peer_totals, sub_totals)
    else:
        print_text(rows, "sfttop")
        if peer is not None:
            print()
            print_text([(lb, *peer[lb.name]) for lb, *_ in rows if lb.name in peer], "epokio")
        print()
        print("\n".join(totals_lines(totals, "sfttop")))
        if peer_totals is not None and sub_totals is not None:
            print()
            print("\n".join(totals_lines(sub_totals, "sfttop (trainer_state.json runs)")))
            print("\n".join(totals_lines(peer_totals, "epokio (same runs)")))
    if skipped:
        print(
            f"\n{len(skipped)} labelled logs not found (their root is missing): {', '.join(skipped[:5])}"
            + (" ..." if len(skipped) > 5 else ""),
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
