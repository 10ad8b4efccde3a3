#!/usr/bin/env bash
# Runs a tidings hub for a long time under churn and checks it loses,
# duplicates and leaks nothing.
#
#   bench/soak.sh            the full run: 10,000 subscribers for an hour;
#                            writes bench/results/soak-<stamp>.csv and the
#                            charts docs/soak-*.png
#   bench/soak.sh --smoke    two minutes with 1,000 subscribers, for CI;
#                            charts only into bench/results/, if gnuplot is there
#
# Every period (a minute) 5% of the subscribers reconnect with Last-Event-ID,
# and 1% are slow readers that stop reading until the hub disconnects them
# as slow, then resume with Last-Event-ID. Events go steadily to exact topics,
# URL patterns and URI templates. Exits non-zero on any loss, duplicate,
# failed publication, or growth of the hub's memory or descriptors after
# warm-up beyond the bounds below (see docs/reliability.md).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

SMOKE=0
PORT=18180
SUBS=10000
STREAMS=30
RATE=100              # events/s over all streams
PAD=1800              # bytes of padding per event: slow streams fill buffers quickly
DURATION=3600
PERIOD=60             # churn period, s
RECONNECT=5           # % of subscribers reconnecting each period
SLOW=1                # % of subscribers that are slow readers
SLOW_PAUSE=45         # s a slow reader stops reading each period
QUEUE_EVENTS=16       # the hub's queue per subscriber (beyond the kernel's buffers)
RETAIN=20000          # events of history; filled well within the warm-up
SAMPLE=10
WARMUP=300
MAX_RSS_GROWTH=32     # MiB the hub's memory may grow after warm-up
CHARTS="$ROOT/docs"

usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; echo; grep -E '^\s+--[a-z-]+\)' "$0" | sed 's/).*//; s/^ */  /'; }

while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) SMOKE=1 ;;
    --port) PORT=$2; shift ;;
    --subs) SUBS=$2; shift ;;
    --streams) STREAMS=$2; shift ;;
    --rate) RATE=$2; shift ;;
    --duration) DURATION=$2; shift ;;
    --period) PERIOD=$2; shift ;;
    --slow-pause) SLOW_PAUSE=$2; shift ;;
    --warmup) WARMUP=$2; shift ;;
    --max-rss-growth) MAX_RSS_GROWTH=$2; shift ;;
    --charts) CHARTS=$2; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

if [ "$SMOKE" = 1 ]; then
  SUBS=1000; STREAMS=6; RATE=100; DURATION=120; PERIOD=20; SLOW_PAUSE=15
  RETAIN=2000; SAMPLE=5; WARMUP=40; MAX_RSS_GROWTH=16
  CHARTS="$ROOT/bench/results"
fi

log() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }

# Every subscription is a descriptor, in the hub and in the load generator.
ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" -lt $((SUBS + 256)) ]; then
  echo "the open-file limit $(ulimit -n) is too low for $SUBS subscribers" >&2
  exit 1
fi

WORK=$(mktemp -d /tmp/tidings-soak.XXXXXX)
HUB_PID=
cleanup() {
  if [ -n "$HUB_PID" ]; then
    kill "$HUB_PID" 2>/dev/null || true
    wait "$HUB_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "building tidings and tidings-bench (release)"
nice -n 19 cargo build --release -q --bin tidings --bin tidings-bench >&2
# Copied out of target/: another build must not swap them during the run.
cp target/release/tidings target/release/tidings-bench "$WORK/"

if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
  echo "port $PORT is taken by another process (see --port)" >&2
  exit 1
fi
JWT_KEY="tidings-soak-$(date +%s)-0123456789abcdef"
log "starting the hub on 127.0.0.1:$PORT"
"$WORK/tidings" serve --listen "127.0.0.1:$PORT" --jwt-key "$JWT_KEY" --history memory \
  --retain-events "$RETAIN" --queue-events "$QUEUE_EVENTS" > "$WORK/hub.log" 2>&1 &
HUB_PID=$!
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  sleep 0.1
done

mkdir -p bench/results
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
NAME=$([ "$SMOKE" = 1 ] && echo soak-smoke || echo soak)
CSV="bench/results/$NAME-$STAMP.csv"
log "soak: $SUBS subscribers, $STREAMS streams, $RATE events/s, $DURATION s; samples in $CSV"
status=0
# The load generator yields to the hub on a shared machine; the hub does not.
nice -n 19 "$WORK/tidings-bench" soak --hub "http://127.0.0.1:$PORT/.well-known/mercure" \
  --jwt-key "$JWT_KEY" --pid "$HUB_PID" --subs "$SUBS" --streams "$STREAMS" --rate "$RATE" \
  --pad "$PAD" --duration "$DURATION" --period "$PERIOD" --reconnect-percent "$RECONNECT" \
  --slow-percent "$SLOW" --slow-pause "$SLOW_PAUSE" --sample-every "$SAMPLE" \
  --warmup "$WARMUP" --max-rss-growth-mib "$MAX_RSS_GROWTH" --csv "$CSV" || status=$?

if ! kill -0 "$HUB_PID" 2>/dev/null; then
  echo "the hub exited during the run; its log:" >&2
  tail -n 30 "$WORK/hub.log" >&2
  status=1
fi
grep -E ' (WARN|ERROR) ' "$WORK/hub.log" | tail -n 10 >&2 || true

if command -v gnuplot >/dev/null; then
  log "charts: $CHARTS/$NAME-*.png"
  mkdir -p "$CHARTS"
  gnuplot -e "csv='$CSV'; out='$CHARTS/$NAME'; warmup=$WARMUP" bench/soak.gp
elif [ "$SMOKE" = 0 ]; then
  echo "gnuplot is not installed: no charts (apt-get install gnuplot-nox)" >&2
fi
exit "$status"
