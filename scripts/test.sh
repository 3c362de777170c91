#!/usr/bin/env bash
# The test command (`npm test`). Installs the real SMTP clients the end-to-end tests drive (as
# root, from Debian), builds, then runs Node's test runner over the compiled unit tests
# (dist/src/**/*.test.js) and end-to-end tests (dist/test/**/*.test.js).
#
# Environment:
#   CI=true                 a missing tool is a failure, never a skip
#   TEST_CONCURRENCY=N      test files run in parallel (default: 2, sized for 2 cores)
#   TEST_FILES="a b"        run only these compiled test files (after the build)
#   KEEP_TEST_TMP=1         keep each gateway's temporary directory (config, data, gateway.log)
set -euo pipefail
cd "$(dirname "$0")/.."

strict=0
if [[ "${CI:-}" == "true" || "${PORTCULLIS_TEST_STRICT:-}" == "1" ]]; then strict=1; fi

log() { printf '== test.sh: %s\n' "$*"; }
die() { printf '== test.sh: FAILED: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- tools
swaks_ok() { command -v swaks >/dev/null 2>&1 && swaks --support 2>&1 | grep -q '=== TLS supported'; }
python_ok() { command -v python3 >/dev/null 2>&1 && python3 -c 'import smtplib, ssl, json' >/dev/null 2>&1; }

missing_pkgs=()
swaks_ok || missing_pkgs+=(swaks libnet-ssleay-perl libio-socket-ssl-perl)
python_ok || missing_pkgs+=(python3)
[[ -x /usr/sbin/rbldnsd ]] || missing_pkgs+=(rbldnsd)
[[ -x /usr/sbin/clamd ]] || missing_pkgs+=(clamav-daemon)
command -v bsdtar >/dev/null 2>&1 || missing_pkgs+=(libarchive-tools)
command -v zip >/dev/null 2>&1 || missing_pkgs+=(zip)
command -v 7z >/dev/null 2>&1 || missing_pkgs+=(p7zip-full)
# The audit's tests run real, deliberately misconfigured peers and look at the HTML report.
[[ -x /usr/lib/postfix/sbin/master ]] || missing_pkgs+=(postfix)
[[ -x /usr/lib/dovecot/imap-login && -x /usr/lib/dovecot/pop3-login ]] || missing_pkgs+=(dovecot-imapd dovecot-pop3d)
command -v openssl >/dev/null 2>&1 || missing_pkgs+=(openssl)
[[ -x /usr/bin/chromium ]] || missing_pkgs+=(chromium)
# The rule engine is checked against the real SpamAssassin (its stock rules and its verdicts);
# the IMAP and POP3 servers are driven by curl (and Python's imaplib/poplib).
command -v spamassassin >/dev/null 2>&1 || missing_pkgs+=(spamassassin)
command -v curl >/dev/null 2>&1 || missing_pkgs+=(curl)
# Outbound DKIM signatures are checked by an independent verifier (python3-dkim, Ed25519 through
# nacl, keys looked up with dnspython); the port-25 policy output by nft's syntax check.
/usr/bin/python3 -c 'import dkim, dns.resolver, nacl' >/dev/null 2>&1 || missing_pkgs+=(python3-dkim python3-dnspython python3-nacl)
[[ -x /usr/sbin/nft ]] || missing_pkgs+=(nftables)
# The Redis state store (src/store/redis-store.ts, test/store/) is tested against a real redis-server.
[[ -x /usr/bin/redis-server ]] || missing_pkgs+=(redis-server)
[[ -x /usr/bin/redis-cli ]] || missing_pkgs+=(redis-tools) # redis-cli: the Cluster and Sentinel tests build and ask their servers with it
# The scan listeners (src/integrations/, test/integrations/) are driven by the real clients:
# SpamAssassin's spamc, and rspamc (shipped in Debian's rspamd package).
command -v spamc >/dev/null 2>&1 || missing_pkgs+=(spamc)
command -v rspamc >/dev/null 2>&1 || missing_pkgs+=(rspamd)

if ((${#missing_pkgs[@]})); then
  if [[ "$(id -u)" == "0" ]] && command -v apt-get >/dev/null 2>&1; then
    log "installing ${missing_pkgs[*]} (Debian)"
    export DEBIAN_FRONTEND=noninteractive
    # Postfix from Debian must not configure a system MTA (only its programs are used).
    echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections 2>/dev/null || true
    # Daemons from Debian (rspamd, redis, clamd, dovecot, postfix) must not start as system
    # services: the tests start their own on loopback. policy-rc.d 101 = "action forbidden".
    made_policy=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
      printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && made_policy=1
    fi
    apt-get update -qq || die "apt-get update failed"
    apt-get install -y -qq --no-install-recommends "${missing_pkgs[@]}" >/dev/null || die "apt-get install ${missing_pkgs[*]} failed"
    if ((made_policy)); then rm -f /usr/sbin/policy-rc.d; fi
  elif ((strict)); then
    die "missing ${missing_pkgs[*]} and not root: cannot install them"
  else
    log "WARNING: missing ${missing_pkgs[*]} (not root): tests that need them will be SKIPPED"
  fi
fi
if ((strict)); then
  swaks_ok || die "swaks with TLS support is required (apt-get install swaks libnet-ssleay-perl)"
  python_ok || die "python3 with smtplib and ssl is required"
  [[ -x /usr/sbin/rbldnsd ]] || die "rbldnsd is required (apt-get install rbldnsd)"
  [[ -x /usr/sbin/clamd ]] || die "clamd is required (apt-get install clamav-daemon)"
  command -v bsdtar >/dev/null 2>&1 || die "bsdtar is required (apt-get install libarchive-tools)"
  [[ -x /usr/lib/postfix/sbin/master ]] || die "postfix is required for the audit tests"
  [[ -x /usr/lib/dovecot/imap-login ]] || die "dovecot-imapd is required for the audit tests"
  [[ -x /usr/bin/chromium ]] || die "chromium is required for the audit report test"
  command -v spamassassin >/dev/null 2>&1 || die "spamassassin is required for the rule engine's tests"
  command -v curl >/dev/null 2>&1 || die "curl is required for the IMAP and POP3 tests"
  command -v spamc >/dev/null 2>&1 || die "spamc is required for the spamd listener's tests (apt-get install spamc)"
  command -v rspamc >/dev/null 2>&1 || die "rspamc is required for the scan-http listener's tests (apt-get install rspamd)"
  export PORTCULLIS_TEST_STRICT=1
fi
log "swaks: $(swaks --version 2>/dev/null | head -1 || echo missing); python3: $(python3 --version 2>&1 || echo missing); node: $(node --version)"

# ---------------------------------------------------------------- build
log "npm run build"
npm run build

# ---------------------------------------------------------------- tests
# Only compiled tests whose TypeScript source still exists (dist/ may hold stale files).
files=()
if [[ -n "${TEST_FILES:-}" ]]; then
  read -r -a files <<<"$TEST_FILES"
else
  while IFS= read -r f; do
    src="${f#dist/}"
    src="${src%.js}.ts"
    [[ -f "$src" ]] && files+=("$f")
  done < <(find dist/src dist/test -name '*.test.js' -type f 2>/dev/null | sort)
fi
((${#files[@]})) || die "no test files found under dist/src or dist/test"
log "${#files[@]} test files"

[[ -f dist/src/cli/main.js ]] || log "WARNING: dist/src/cli/main.js is missing: every end-to-end test will fail"

report="dist/test-report.tap"
rm -f "$report"
status=0
node --test \
  --test-concurrency="${TEST_CONCURRENCY:-2}" \
  --test-timeout=300000 \
  --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination="$report" \
  "${files[@]}" || status=$?

# One plain closing line, whatever the reporter printed above.
if [[ -f "$report" ]]; then
  count() { { grep -E "^# $1 [0-9]+$" "$report" || true; } | tail -1 | awk '{print $3}'; }
  pass="$(count pass)"; fail="$(count fail)"; skipped="$(count skipped)"; cancelled="$(count cancelled)"; todo="$(count todo)"
  fail=$(( ${fail:-0} + ${cancelled:-0} ))
  if (( ${skipped:-0} > 0 )); then
    # Missing tools never skip in CI (the tests throw instead); list any other skip loudly.
    log "SKIPPED tests:"; grep -E '# SKIP' "$report" | sed 's/^/   /' || true
  fi
  echo "tests: ${pass:-0} passed, ${fail} failed, ${skipped:-0} skipped"
fi
exit "$status"
