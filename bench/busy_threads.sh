#!/bin/bash
# The busy figure by thread: CPU of the sfttop process and of each of its threads (from
# /proc/PID/task/*/stat) over SECONDS while bench/busywriter.py appends to NRUNS copies of a
# history log, the TUI in tmux at 120x36 (a tmux server of its own, -L sfttop-bench).
#
#   bench/busy_threads.sh "CMD" NRUNS RATE SECONDS [HISTORY_LOG [START]]
#   bench/busy_threads.sh "$(which sfttop)" 16 2 30
#   bench/busy_threads.sh "env PYTHONPATH=/tmp/old python -m sfttop" 16 2 30   # another tree
#   FRAME_TIMERS=/tmp/ft.txt bench/busy_threads.sh "python bench/frame_timers.py" 16 2 30
#
# HISTORY_LOG defaults to bench/out/logs/hf4-n2000-s0-e100-l5-v4.log (made by bench.py --quick
# --only busy); START is its record count (the writers go on from there). Prints milliseconds of
# CPU and % of a core per thread (user, system); with FRAME_TIMERS set, copies of the timers file
# at the window's start and end go to $FRAME_TIMERS.0 and $FRAME_TIMERS.1. WRITER_ARGS go to the
# writer (WRITER_ARGS="--plain --noisy": bare dict lines, a noisy loss); WARM=S: the window opens S s
# after the writers start (default 4). PYSPY=out.txt samples the
# window with py-spy (collapsed stacks by thread; pip install py-spy).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
CMD=$1; N=$2; RATE=$3; SECS=$4
LOG=${5:-$HERE/out/logs/hf4-n2000-s0-e100-l5-v4.log}; START=${6:-2000}
PY=${PYTHON:-python3}
WORK=$(mktemp -d); trap 'tmux -L sfttop-bench kill-session -t busy 2>/dev/null; rm -rf "$WORK"' EXIT
for i in $(seq -w 0 $((N - 1))); do mkdir -p "$WORK/run$i"; cp "$LOG" "$WORK/run$i/train.log"; done
tmux -L sfttop-bench kill-session -t busy 2>/dev/null
tmux -L sfttop-bench new -d -s busy -x 120 -y 36 "$CMD '$WORK/*/train.log'"
sleep 1
PID=$(tmux -L sfttop-bench display -p -t busy '#{pane_pid}')
C=$(pgrep -P "$PID" | head -1); [ -n "$C" ] && PID=$C
sleep "${LOADWAIT:-6}"  # the history loaded (longer for long histories)
"$PY" "$HERE/busywriter.py" ${WRITER_ARGS:-} --rate "$RATE" --start "$START" --seconds $((SECS + ${WARM:-4} + 4)) --times "$WORK/times.txt" "$WORK"/run*/train.log &
W=$!
sleep "${WARM:-4}"  # the writers going before the window opens
snap() {
    for t in /proc/$PID/task/*; do echo "$(basename "$t") $(awk '{print $14, $15}' "$t/stat")"; done
    echo "process $(awk '{print $14, $15}' /proc/$PID/stat)"
}
snap > "$WORK/s0"; [ -n "${FRAME_TIMERS:-}" ] && cp "$FRAME_TIMERS" "$FRAME_TIMERS.0" 2>/dev/null
T0=$(date +%s.%N)
if [ -n "${PYSPY:-}" ]; then  # where the window's CPU goes: py-spy samples (its own cost shows in the figures)
    py-spy record -p "$PID" -d "$SECS" -r ${PYSPY_RATE:-200} --threads ${PYSPY_ARGS:-} -f raw -o "$PYSPY" >/dev/null 2>&1
else
    sleep "$SECS"
fi
snap > "$WORK/s1"; [ -n "${FRAME_TIMERS:-}" ] && cp "$FRAME_TIMERS" "$FRAME_TIMERS.1" 2>/dev/null
T1=$(date +%s.%N)
wait $W
"$PY" - "$WORK/s0" "$WORK/s1" "$T0" "$T1" <<'PY'
import os, sys
tick = os.sysconf("SC_CLK_TCK")
a, b = ({l.split()[0]: tuple(map(int, l.split()[1:])) for l in open(p)} for p in sys.argv[1:3])
dt = float(sys.argv[4]) - float(sys.argv[3])
for k, (u1, s1) in b.items():
    u0, s0 = a.get(k, (0, 0))
    ms = (u1 - u0 + s1 - s0) * 1000 / tick
    if ms or k == "process":
        print(f"{k:10} {ms:7.0f} ms  {ms / 10 / dt:5.2f}% of a core  (user {(u1 - u0) * 1000 / tick:.0f}, system {(s1 - s0) * 1000 / tick:.0f})")
print(f"over {dt:.1f} s; load average {open('/proc/loadavg').read().split()[0]}")
PY
