#!/bin/bash
# make systemd-test: the .deb of make deb under a real systemd. A Debian
# bookworm tree (debootstrap --variant=minbase, cached in
# /var/cache/popspool-systemd-test) is booted with systemd-nspawn -b, on the
# host's network; a POP3 test server (spooltest/cmd/pop3serve) listens on the
# host's loopback. In the container: dpkg -i, the config, then start,
# readiness, the flow into a Maildir, reload, the watchdog, the journal,
# upgrade, remove and purge. One PASS/FAIL line per check; exit 1 on a FAIL,
# 2 when the container cannot be booted at all (with the reason).
#
# As root. Every wait is bounded. DEB=... tests another package;
# NSPAWN_FLAGS (default --register=no --keep-unit) replaces nspawn's flags;
# WATCHDOG_SEC (default 10) shortens the units' WatchdogSec=60s in a drop-in
# so that the watchdog check takes seconds, not minutes.
set -uo pipefail
cd "$(dirname "$0")/.."

cache=/var/cache/popspool-systemd-test
base=$cache/base
tree=$cache/run
suite=bookworm
mirror=${MIRROR:-http://deb.debian.org/debian}
watchdog_sec=${WATCHDOG_SEC:-10}
export PATH=$PATH:/usr/local/go/bin

fails=0
pass() { printf 'PASS  %s\n' "$*"; }
fail() { printf 'FAIL  %s\n' "$*"; fails=$((fails + 1)); }
check() { # check NAME COMMAND...: PASS when the command succeeds
	local name=$1
	shift
	if "$@"; then pass "$name"; else fail "$name"; fi
}
logged() { # logged NAME COMMAND...: the output into $work/NAME.log, shown on failure
	local log=$work/$1.log
	shift
	"$@" >"$log" 2>&1 || { sed 's/^/      /' "$log"; return 1; }
}
die() { echo "systemd-test: $*" >&2; exit 2; }

[ "$(id -u)" = 0 ] || die "needs root (debootstrap, systemd-nspawn)"
for t in debootstrap:debootstrap systemd-nspawn:systemd-container nsenter:util-linux; do
	command -v "${t%%:*}" >/dev/null && continue
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${t#*:}" >/dev/null ||
		die "cannot install ${t#*:}"
done
deb=${DEB:-$(ls -t bin/popspool_*.deb 2>/dev/null | head -1)}
[ -f "$deb" ] || die "no .deb: run make deb first"

work=$(mktemp -d /tmp/popspool-systemd-test.XXXXXX)
nspawn_pid= server_pid= leader=
cleanup() {
	if [ -n "$leader" ]; then
		timeout 10 nsenter -t "$leader" -a systemctl poweroff >/dev/null 2>&1
	fi
	if [ -n "$nspawn_pid" ]; then
		for _ in $(seq 30); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 1; done
		kill -0 "$nspawn_pid" 2>/dev/null && kill -KILL "$nspawn_pid" 2>/dev/null
	fi
	[ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null
	wait 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

# --- the Debian tree, debootstrapped once -------------------------------
# procps: /bin/kill, which the units' ExecReload runs (the package Depends on it).
include=systemd,systemd-sysv,dbus,procps
if [ "$(cat "$base/.complete" 2>/dev/null)" != "$include" ]; then
	rm -rf "$base" "$base.tmp"
	mkdir -p "$cache"
	start=$(date +%s)
	echo "debootstrap $suite into $base (once; later runs reuse it) ..."
	if ! timeout 900 debootstrap --variant=minbase --include="$include" \
		"$suite" "$base.tmp" "$mirror" >"$cache/debootstrap.log" 2>&1; then
		tail -20 "$cache/debootstrap.log" >&2
		die "debootstrap failed (log: $cache/debootstrap.log)"
	fi
	echo popspool-test >"$base.tmp/etc/hostname"
	mv "$base.tmp" "$base" && echo "$include" >"$base/.complete"
	echo "debootstrap: $(($(date +%s) - start)) s, $(du -sh "$base" | cut -f1)"
else
	echo "debootstrap: cached tree $base ($(du -sh "$base" | cut -f1))"
fi
rm -rf "$tree"
cp -a --reflink=auto "$base" "$tree" || die "cannot copy $base to $tree"
cp "$deb" "$tree/root/popspool.deb"

# --- the POP3 test server, on the host's loopback -----------------------
go build -o "$work/pop3serve" ./spooltest/cmd/pop3serve || die "cannot build spooltest/cmd/pop3serve"
mkdir -p "$work/box"
head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$work/pass"
"$work/pop3serve" -dir "$work/box" -samples -user office -pass-file "$work/pass" \
	-addr-file "$work/addr" -timeout 15m >"$work/pop3serve.log" 2>&1 &
server_pid=$!
for _ in $(seq 50); do [ -s "$work/addr" ] && break; sleep 0.1; done
[ -s "$work/addr" ] || die "pop3serve did not start: $(cat "$work/pop3serve.log")"
addr=$(cat "$work/addr")
want=$(find "$work/box" -name '*.eml' | wc -l)
echo "POP3 test server on $addr with $want messages"

# --- boot ----------------------------------------------------------------
# --register=no --keep-unit: the host may run no systemd (no system bus, no
# machined), and nspawn then can neither register the machine nor make a
# scope for it; the container's own systemd is PID 1 all the same.
# docs/operations.md, "Tested under a real systemd".
# NSPAWN_FLAGS replaces these two (NSPAWN_FLAGS= shows the failure).
# shellcheck disable=SC2086
systemd-nspawn -D "$tree" -M popspool-test -b ${NSPAWN_FLAGS---register=no --keep-unit} \
	--console=passive >"$work/nspawn.log" 2>&1 &
nspawn_pid=$!
for _ in $(seq 100); do
	for p in $(pgrep -P "$nspawn_pid"); do
		[ "$(cat "/proc/$p/comm" 2>/dev/null)" = systemd ] && leader=$p
	done
	[ -n "$leader" ] && break
	kill -0 "$nspawn_pid" 2>/dev/null || break
	sleep 0.2
done
if [ -z "$leader" ]; then
	cat "$work/nspawn.log" >&2
	die "systemd-nspawn did not start the container's systemd (output above)"
fi
# ct COMMAND...: runs a command in the container, bounded.
ct() { timeout 120 nsenter -t "$leader" -a env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"; }
booted=$(date +%s%N)
state=$(ct systemctl is-system-running --wait 2>&1)
booted=$((($(date +%s%N) - booted) / 1000000))
case $state in
running | degraded) pass "boot: systemd is PID 1 of the container, system $state ${booted} ms after it started" ;;
*)
	tail -30 "$work/nspawn.log" >&2
	die "the container's systemd did not finish booting: '$state'"
	;;
esac
[ "$state" = degraded ] && ct systemctl --failed --no-legend

# --- install -------------------------------------------------------------
check "dpkg -i $(basename "$deb")" logged dpkg-i ct dpkg -i /root/popspool.deb
check "postinst created the popspool user" logged id ct id popspool
check "postinst made /var/spool/popspool 700 popspool:popspool" \
	test "$(ct stat -c '%a %U:%G' /var/spool/popspool)" = "700 popspool:popspool"
check "postinst made /etc/popspool 750 root:popspool" \
	test "$(ct stat -c '%a %U:%G' /etc/popspool)" = "750 root:popspool"
check "postinst enabled nothing" test "$(ct systemctl is-enabled popspool.target)" = disabled
check "postinst started nothing" test "$(ct systemctl is-active popspool-fetchd popspool-rewrited popspool-deliverd | sort -u)" = inactive

# --- config --------------------------------------------------------------
install -d -m 0755 "$tree/srv/mail"
ct chown popspool:popspool /srv/mail
install -m 0640 "$work/pass" "$tree/etc/popspool/office.pass"
cat >"$tree/etc/popspool/popspool.toml" <<EOF
# written by scripts/systemd-test.sh
spool = "/var/spool/popspool"
rescan = "30s"

[log]
level = "info"
format = "json"

[[account]]
name = "office"
server = "$addr"
tls = "none"                # the test server on the host's loopback has no TLS
allow_plaintext = true
username = "office"
password_file = "/etc/popspool/office.pass"
interval = "2s"
deliver_to = ["alice@contoso.local"]

[deliver]
target = "maildir:///srv/mail/{user}"
postmaster = "postmaster@contoso.local"
EOF
chmod 0640 "$tree/etc/popspool/popspool.toml"
ct chown root:popspool /etc/popspool/popspool.toml /etc/popspool/office.pass
# The Maildir root, as docs/operations.md says (systemctl edit
# popspool-deliverd), and the shorter watchdog for this test.
mkdir -p "$tree/etc/systemd/system/popspool-deliverd.service.d"
printf '[Service]\nReadWritePaths=/srv/mail\n' >"$tree/etc/systemd/system/popspool-deliverd.service.d/maildir.conf"
for d in fetchd rewrited deliverd; do
	mkdir -p "$tree/etc/systemd/system/popspool-$d.service.d"
	printf '[Service]\nWatchdogSec=%ss\n' "$watchdog_sec" >"$tree/etc/systemd/system/popspool-$d.service.d/test-watchdog.conf"
done
ct systemctl daemon-reload
check "fetchd check (as popspool) logs on to the test server" logged check ct runuser -u popspool -- fetchd check

# --- start, readiness ----------------------------------------------------
t0=$(ct date +%s)
check "systemctl start popspool.target" ct systemctl start popspool.target
for d in fetchd rewrited deliverd; do
	show=$(ct systemctl show -p Type,NotifyAccess,ActiveState,SubState,StatusText,ExecMainStartTimestampMonotonic,ActiveEnterTimestampMonotonic "popspool-$d")
	get() { sed -n "s/^$1=//p" <<<"$show"; }
	if [ "$(get Type)" = notify ] && [ "$(get NotifyAccess)" = main ] && [ "$(get ActiveState)/$(get SubState)" = active/running ] &&
		[ "$(get ActiveEnterTimestampMonotonic)" -gt "$(get ExecMainStartTimestampMonotonic)" ] && [ -n "$(get StatusText)" ]; then
		pass "popspool-$d: Type=notify, active/running after READY=1, status \"$(get StatusText)\""
	else
		fail "popspool-$d readiness: $(tr '\n' ' ' <<<"$show")"
	fi
done

# --- the flow ------------------------------------------------------------
count() { find "$tree/srv/mail" -path '*/new/*' -type f 2>/dev/null | wc -l; }
for _ in $(seq 120); do [ "$(count)" -ge "$want" ] && break; sleep 0.5; done
check "mail flowed: $(count)/$want messages in the Maildir (/srv/mail/alice/new), the POP3 box now holds $(find "$work/box" -name '*.eml' | wc -l)" \
	test "$(count)" -eq "$want"
check "hardening: the spool written by the daemons (popspool-owned files under /var/spool/popspool)" \
	test -n "$(ct find /var/spool/popspool -user popspool -type f -print -quit)"

pid=$(ct systemctl show -p MainPID --value popspool-deliverd)
check "hardening: ProtectSystem=strict in force, /etc and /usr read-only in deliverd's namespace" \
	bash -c "! timeout 10 nsenter -t $leader -a nsenter -t $pid -m touch /etc/probe /usr/probe 2>/dev/null && [ ! -e '$tree/etc/probe' ]"
check "hardening: the spool and the ReadWritePaths= drop-in's /srv/mail writable there" \
	ct nsenter -t "$pid" -m sh -c 'touch /var/spool/popspool/.probe /srv/mail/.probe && rm /var/spool/popspool/.probe /srv/mail/.probe'
check "hardening: deliverd runs as popspool with no capabilities (CapEff 0), user $(ct stat -c %U /proc/$pid)" \
	bash -c "timeout 10 nsenter -t $leader -a cat /proc/$pid/status | grep -q '^CapEff:[[:space:]]*0000000000000000$'"

# --- reload ----------------------------------------------------------------
since=$(ct date '+%Y-%m-%d %H:%M:%S')
sleep 1
check "systemctl reload popspool.target" ct systemctl reload popspool.target
for d in fetchd rewrited deliverd; do
	ok=
	for _ in $(seq 20); do
		ct journalctl -u "popspool-$d" --since "$since" -o cat | grep -q '"event":1015' && ok=1 && break
		sleep 0.5
	done
	check "popspool-$d reloaded: event 1015 in journalctl -u popspool-$d" test -n "$ok"
done
line=$(ct journalctl -u popspool-fetchd --since "$since" -o json | grep -m1 '\\"event\\":1015')
check "journal fields: SYSLOG_IDENTIFIER=fetchd, _SYSTEMD_UNIT=popspool-fetchd.service, MESSAGE with the event" \
	bash -c 'grep -q "\"SYSLOG_IDENTIFIER\":\"fetchd\"" <<<"$1" && grep -q "\"_SYSTEMD_UNIT\":\"popspool-fetchd.service\"" <<<"$1"' - "$line"
echo "      e.g. $(grep -o '"MESSAGE":"[^}]*}"' <<<"$line" | head -c 300)"
found=
for d in fetchd rewrited deliverd; do
	ct journalctl --since "$since" POPSPOOL_EVENT=1015 SYSLOG_IDENTIFIER=$d PRIORITY=6 -o cat | grep -q '"event":1015' && found="$found $d"
done
check "journal fields: journalctl POPSPOOL_EVENT=1015 SYSLOG_IDENTIFIER=<daemon> PRIORITY=6 finds each reload (found:$found)" \
	test "$found" = " fetchd rewrited deliverd"

# --- the watchdog ----------------------------------------------------------
before=$(ct systemctl show -p NRestarts --value popspool-rewrited)
pid=$(ct systemctl show -p MainPID --value popspool-rewrited)
since=$(ct date '+%Y-%m-%d %H:%M:%S')
ct systemctl kill -s SIGSTOP --kill-who=main popspool-rewrited
stopped=$(date +%s)
ok=
for _ in $(seq $((watchdog_sec * 2 + 30))); do
	now=$(ct systemctl show -p NRestarts,MainPID,ActiveState popspool-rewrited | sort | tr '\n' ' ')
	case $now in *"ActiveState=active"*"NRestarts=$((before + 1))"*) ok=1 && break ;; esac
	sleep 1
done
took=$(($(date +%s) - stopped))
check "watchdog: rewrited stopped by SIGSTOP (pid $pid) restarted ${took}s later, WatchdogSec=${watchdog_sec}s ($now)" \
	test -n "$ok" -a "$took" -ge "$watchdog_sec"
check "watchdog: 'Watchdog timeout' in the journal" \
	bash -c "timeout 30 nsenter -t $leader -a journalctl -u popspool-rewrited --since '$since' -o cat | grep -q 'Watchdog timeout'"

# --- upgrade: the same package again while running --------------------------
pid=$(ct systemctl show -p MainPID --value popspool-fetchd)
logged dpkg-u ct dpkg -i /root/popspool.deb
now=$(ct systemctl show -p MainPID --value popspool-fetchd)
check "upgrade (dpkg -i again): fetchd restarted ($pid -> $now) and active" \
	test "$now" != "$pid" -a "$(ct systemctl is-active popspool-fetchd)" = active

# --- Type=notify refuses a daemon that cannot start --------------------------
cp "$tree/etc/popspool/popspool.toml" "$work/good.toml"
echo 'this is = not [ toml' >>"$tree/etc/popspool/popspool.toml"
check "a broken config: systemctl restart popspool-rewrited fails (no READY=1)" \
	bash -c "! timeout 60 nsenter -t $leader -a systemctl restart popspool-rewrited 2>/dev/null"
cp "$work/good.toml" "$tree/etc/popspool/popspool.toml"
ct systemctl reset-failed popspool-rewrited
check "the config mended: systemctl start popspool-rewrited" ct systemctl start popspool-rewrited

check "systemctl enable popspool.target (for purge to undo)" logged enable ct systemctl enable popspool.target

# --- remove, purge ----------------------------------------------------------
ct find /var/spool/popspool -type f | wc -l >"$work/spoolfiles"
check "dpkg -r popspool" logged dpkg-r ct dpkg -r popspool
check "after remove: no popspool daemon runs" bash -c "! timeout 10 nsenter -t $leader -a pgrep -u popspool"
check "after remove: the binaries and units are gone" \
	test ! -e "$tree/usr/sbin/fetchd" -a ! -e "$tree/lib/systemd/system/popspool.target"
check "after remove: the spool ($(cat "$work/spoolfiles") files), the config and the example stay" \
	test "$(ct find /var/spool/popspool -type f | wc -l)" = "$(cat "$work/spoolfiles")" \
	-a -f "$tree/etc/popspool/popspool.toml" -a -f "$tree/etc/popspool/popspool.toml.example"
check "dpkg -P popspool" logged dpkg-p ct dpkg -P popspool
check "after purge: no popspool enablement links left in /etc/systemd/system" \
	test -z "$(find "$tree/etc/systemd/system" -name 'popspool*' -type l)" -a ! -e "$tree/etc/systemd/system/popspool.target.wants"
check "after purge: the example config is gone; the spool, popspool.toml, the password file and the user stay" \
	test ! -e "$tree/etc/popspool/popspool.toml.example" -a -f "$tree/etc/popspool/popspool.toml" \
	-a -f "$tree/etc/popspool/office.pass" -a -d "$tree/var/spool/popspool" -a -n "$(ct id -u popspool)"

echo
if [ "$fails" -gt 0 ]; then
	mkdir -p "$cache/logs" && cp "$work"/*.log "$cache/logs/"
	echo "systemd-test: $fails check(s) FAILED (logs in $cache/logs)"
	exit 1
fi
echo "systemd-test: all checks passed"
