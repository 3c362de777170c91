#!/usr/bin/env bash
# Throughput benchmark: Portcullis vs Postfix's smtp-sink vs Haraka, on loopback.
# `npm run bench` runs this. It installs the peers it needs (Debian's postfix package for
# smtp-sink/smtp-source, npm's Haraka into .bench/haraka), prepares the message set, builds the
# gateway into .bench/snapshot, runs bench/bench.mjs and writes docs/benchmarks.md. See bench/README.md.
#
# Environment: BENCH_MESSAGES (2000), BENCH_SESSIONS (10), BENCH_REPS (5), BENCH_WARMUP (200),
# BENCH_TARGETS (comma list of target ids, default all), BENCH_BUDGET (seconds, 540),
# BENCH_NO_BUILD=1 (measure dist/ as it is), BENCH_NO_INSTALL=1 (install nothing).
# BENCH_NODE_ARGS: extra node options for the Portcullis process (e.g. "--cpu-prof --cpu-prof-dir=/tmp/p" to profile it).
set -euo pipefail

ROOT=$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel 2>/dev/null || (cd "$(dirname "$0")/.." && pwd))
SHARED=${BENCH_SHARED:-$ROOT/../shared}
BENCH=$ROOT/.bench
HARAKA_VERSION=${BENCH_HARAKA_VERSION:-3}
cd "$ROOT"
mkdir -p "$BENCH"

say() { printf '[bench] %s\n' "$*" >&2; }

# ---- peers ----
if [ -z "${BENCH_NO_INSTALL:-}" ]; then
  if [ ! -x /usr/sbin/smtp-sink ] || [ ! -x /usr/sbin/smtp-source ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      say "installing postfix (for smtp-sink and smtp-source; no MTA gets configured)"
      echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections
      apt-get update -qq >/dev/null
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postfix >"$BENCH/apt.log" 2>&1 \
        || { say "apt-get install postfix failed, see $BENCH/apt.log"; }
    else
      say "smtp-sink not found and cannot install it (need root and apt-get)"
    fi
  fi
  if [ ! -f "$BENCH/haraka/node_modules/Haraka/bin/haraka" ]; then
    say "installing Haraka@$HARAKA_VERSION into .bench/haraka"
    npm install --prefix "$BENCH/haraka" --no-audit --no-fund --loglevel=error "Haraka@$HARAKA_VERSION" >"$BENCH/haraka-install.log" 2>&1 \
      || say "npm install Haraka failed, see $BENCH/haraka-install.log"
  fi
fi
if [ ! -x /usr/sbin/smtp-sink ]; then
  say "smtp-sink is missing: cannot measure anything"; exit 1
fi
command -v openssl >/dev/null || say "openssl not found: the Haraka STARTTLS rows will fail"

# ---- message set ----
if [ ! -f "$BENCH/corpus/set.json" ] || [ "$SHARED/corpus/sa2002-dev.tar.gz" -nt "$BENCH/corpus/set.json" ] \
   || [ bench/corpus.mjs -nt "$BENCH/corpus/set.json" ]; then
  say "preparing the message set"
  node bench/corpus.mjs --tarball "$SHARED/corpus/sa2002-dev.tar.gz" --out "$BENCH/corpus" >/dev/null
fi

# ---- the gateway ----
# Built with the project's tsconfig into a private snapshot (.bench/snapshot, laid out like the
# repository: dist/, conf/, package.json, node_modules -> ../../node_modules), so that anyone
# rebuilding dist/ during the run changes neither what is measured nor their own dist/.
BUILD_STATUS=ok
if [ -z "${BENCH_NO_BUILD:-}" ]; then
  say "building the gateway into .bench/snapshot (tsc -p tsconfig.json)"
  SNAP=$BENCH/snapshot
  rm -rf "$SNAP"
  mkdir -p "$SNAP"
  if ! node node_modules/typescript/bin/tsc -p tsconfig.json --outDir "$SNAP/dist" >"$BENCH/build.log" 2>&1; then
    first=$(grep -m1 'error' "$BENCH/build.log" | tr -d '\r' | cut -c1-200 || true)
    BUILD_STATUS="build failed (${first:-see .bench/build.log})"
    say "$BUILD_STATUS"
  fi
  [ -d conf ] && cp -r conf "$SNAP/conf"
  # The console's stylesheet is read from the source tree at startup (src/web/server.ts).
  mkdir -p "$SNAP/src/web" && cp -r src/web/static "$SNAP/src/web/static"
  cp package.json "$SNAP/package.json"
  ln -s ../../node_modules "$SNAP/node_modules"
  export BENCH_CLI=${BENCH_CLI:-$SNAP/dist/src/cli/main.js}
else
  export BENCH_CLI=${BENCH_CLI:-$ROOT/dist/src/cli/main.js}
  BUILD_STATUS="not rebuilt (BENCH_NO_BUILD): dist/ as it is"
fi

# ---- component benchmarks ----
# Each bench/<name>.mjs prints one JSON object; bench.mjs puts them in the report. A failure is
# recorded (and shown in the report), never fatal. BENCH_COMPONENTS picks a subset ("" = none).
# outbound: delivery with DKIM signing to smtp-sink, next to smtp-sink's own rate (bench/outbound.mjs, < 1 min).
# console: page server time over 100,000 quarantined messages and traced messages (bench/console.mjs, ≈2 min).
# milter: Postfix alone against Postfix + Portcullis as its milter, fed by smtp-source (bench/milter.mjs, ≈1 min).
COMPONENTS=${BENCH_COMPONENTS-edge zones mime clamd checks outbound console milter}
mkdir -p "$BENCH/results/components"
for c in $COMPONENTS; do
  out="$BENCH/results/components/$c.json"
  rm -f "$out"
  script=bench/$c.mjs
  [ "$c" = checks ] && script=bench/check-costs.mjs # what each check costs per message
  [ -f "$script" ] || continue
  case "$BUILD_STATUS" in *failed*)
    printf '{"error":"not run: %s"}\n' "$BUILD_STATUS" >"$out"; continue ;;
  esac
  say "component benchmark: $c"
  if node "$script" --cli "$BENCH_CLI" >"$out.tmp" 2>"$BENCH/$c.log" && tail -1 "$out.tmp" | node -e 'JSON.parse(require("fs").readFileSync(0,"utf8"))' 2>/dev/null; then
    tail -1 "$out.tmp" >"$out"
  else
    err=$(tail -3 "$BENCH/$c.log" | tr '\n"' '  ' | cut -c1-300)
    printf '{"error":"%s"}\n' "${err:-failed, see .bench/$c.log}" >"$out"
    say "component $c failed: see .bench/$c.log"
  fi
  rm -f "$out.tmp"
done

# Spam scanning speed: Portcullis next to spamd and rspamd on the same messages (bench/spam-speed.mjs,
# installs the peers itself; ≈3 min). BENCH_SPAM_SPEED=0 skips it.
if [ "${BENCH_SPAM_SPEED:-1}" != 0 ]; then
  out="$BENCH/results/components/spam.json"; rm -f "$out"
  say "component benchmark: spam scanning speed"
  node bench/spam-speed.mjs --cli "$BENCH_CLI" --corpus "$SHARED/corpus/sa2002-dev.tar.gz" --out "$out" >/dev/null 2>"$BENCH/spam.log" \
    || printf '{"error":"%s"}\n' "$(tail -3 "$BENCH/spam.log" | tr '\n"' '  ' | cut -c1-300)" >"$out"
fi

# IMAP under load: 500 idle TLS sessions in IDLE and 50 clients fetching (bench/imap-load.mjs,
# ≈1 min). BENCH_IMAP=0 skips it.
if [ "${BENCH_IMAP:-1}" != 0 ]; then
  out="$BENCH/results/components/imap.json"; rm -f "$out"
  say "component benchmark: IMAP load"
  node bench/imap-load.mjs --out "$out" >/dev/null 2>"$BENCH/imap.log" \
    || printf '{"error":"%s"}\n' "$(tail -3 "$BENCH/imap.log" | tr '\n"' '  ' | cut -c1-300)" >"$out"
fi

# ---- measure ----
BENCH_BUILD_STATUS=$BUILD_STATUS exec node bench/bench.mjs "$@"
