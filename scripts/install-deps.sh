#!/usr/bin/env bash
# Installs what the tests need beyond Go: Debian's Dovecot (POP3, LMTP) and
# Postfix, for the integration tests against real servers, and the MinGW
# binutils, whose windmc and windres check the Event Log message table
# (shared/service/msgtable), and chromium, the headless browser of the
# console's test (spooltest/e2e TestConsoleRequeueInBrowser). Needs root and
# apt-get; elsewhere it says why those tests will skip. Nothing is started
# here: the tests start private instances on loopback high ports.
set -euo pipefail

pkgs=(dovecot-core dovecot-pop3d dovecot-lmtpd postfix binutils-mingw-w64-x86-64 chromium)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: ${pkgs[*]} installed"
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "deps: not root or no apt-get: ${missing[*]} not installed; tests against real Dovecot/Postfix will skip"
  exit 0
fi
echo "deps: installing ${missing[*]}"
# Postfix must not configure or start the system instance.
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Package scripts may have started the stock daemons; the tests run their own.
pkill -f '^/usr/lib/postfix/sbin/master' 2>/dev/null || true
pkill -x dovecot 2>/dev/null || true
echo "deps: installed ${missing[*]}"
