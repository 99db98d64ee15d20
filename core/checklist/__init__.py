"""The seed's monitoring checklist at three cadences: every 100 steps, every 1000 steps, every epoch.

Each cadence cuts the run into windows and judges the seed's four items for each window:
``pass``, ``warn``, ``fail`` or ``pending`` (not enough data in that window yet). The latest
window shows the run now; the past windows show when a check turned.

Windows follow the run's own steps. The nominal sizes are 100 and 1000 steps, but a window must
hold at least ``MIN_POINTS`` logged train points to say anything, and a cadence keeps every
window of the run, so it should not have more than ``MAX_WINDOWS`` of them. With a logging
interval L, the "100 steps" window is ``nice(max(100, 5 L))`` steps and the "1000 steps" window
``nice(max(1000, 4 x that))``, where ``nice`` rounds up to 1, 2, 2.5 or 5 x 10^k; a run past
1000 windows (at step S > 1000 x the window) gets windows twice as wide, as often as needed. A
run logged every 5 steps gets windows of 100 and 1000 steps; one logged every 500 steps gets 2500
and 10000; a 3,000,000-step run 3200 and 16000, labelled so. Because a grown window is whole old
ones, their cached verdicts are merged (each item the worst of its parts) rather than judged
again from points the store no longer holds at full resolution. (Each closed window is kept,
judged, for the report and the history: a thousand per cadence is the memory a run's checklist
costs.) When the base sizes change (the logging interval, measured early on, changed), every
window is judged again. Window k of size W holds steps
``k*W+1 .. (k+1)*W`` (step 0, an eval before training, joins the first). Epoch windows hold the
records whose epoch lies in ``(e-1, e]``, so the record that ends epoch 1 at ``epoch == 1.0``
belongs to epoch 1.

Items combine what the window's own values say (medians compared with the previous window, the
latest eval in it) with the diagnoser's finding episodes that overlap the window. Each window
costs its own points plus O(log n) lookups: evals and findings are indexed once per ``update()``
(the previous eval and the best eval so far by bisection, findings by code and step), never
rescanned from the start of the run. Closed windows are cached; only the open one is recomputed,
so calling ``update()`` a few times a second on a growing run costs O(latest windows + new evals
+ findings). A finding that opens later and reaches back into a cached window is merged into its
cached verdicts; the window's data is not read again. The store keeps only the newest points of a
series at full resolution, so a window should be judged soon after it closes: ``advance()`` does
just that, cheaply, for a loader to call every few hundred records.

The package: ``items`` (one ``CheckItem`` row per item: cadence, labels, judge, finding codes),
``judges`` (what a window's own data says), ``context`` (what a window holds, as judges read
it), ``windows`` (the compact verdicts), ``engine`` (windows, caching, merging).
"""

from .engine import MAX_WINDOWS, MIN_POINTS, Checklist, checklist, nice_ceil, window_sizes
from .items import BY_CADENCE, CADENCES, ITEM_BY_ID, ITEMS, CheckItem
from .windows import FAIL, PASS, PENDING, WARN, Cadence, ChecklistState, CheckResult, Window

__all__ = [
    "BY_CADENCE",
    "CADENCES",
    "FAIL",
    "ITEMS",
    "ITEM_BY_ID",
    "MAX_WINDOWS",
    "MIN_POINTS",
    "PASS",
    "PENDING",
    "WARN",
    "Cadence",
    "CheckItem",
    "CheckResult",
    "Checklist",
    "ChecklistState",
    "Window",
    "checklist",
    "nice_ceil",
    "window_sizes",
]
