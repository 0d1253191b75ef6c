#!/bin/bash
# make deb: builds bin/popspool_<version>_<arch>.deb with dpkg-deb from
# "make install" into a staging tree. No debhelper: the maintainer scripts
# are in dist/debian/. Needs dpkg-dev (dpkg-shlibdeps) and fakeroot-free
# root or fakeroot for the file owners (dpkg-deb --root-owner-group).
set -euo pipefail
cd "$(dirname "$0")/.."

out=${OUT:-bin}
maint=${DEB_MAINTAINER:-"popspool maintainers <maintainers@users.noreply.h-seed-692b5101.example>"}

# debversion turns "git describe" into a Debian version: v1.2-3-gabc-dirty
# becomes 1.2+git3.gabc.dirty-1; a tree without tags
# 0~git<commit time>.<hash>-1 (a later commit sorts later, a first tag above
# both). The "-1" revision: the packaging is ours, not part of a release.
debversion() {
	local d h
	h=$(git describe --always --dirty 2>/dev/null || echo unknown)
	if d=$(git describe --tags --dirty 2>/dev/null) && [[ $d =~ ^v?[0-9] ]]; then
		d=${d#v}
		d=${d/-/+git}
		echo "${d//-/.}-1"
	else
		echo "0~git$(git log -1 --format=%cd --date=format:%Y%m%d%H%M%S 2>/dev/null || echo 0).${h//-/.}-1"
	fi
}

version=${DEB_VERSION:-$(debversion)}
arch=$(dpkg --print-architecture)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root=$stage/root
pkgdoc=$root/usr/share/doc/popspool

# Stripped binaries (-s -w): a .deb ships no debug info.
# Position-independent (-buildmode=pie: PIE and RELRO, as lintian's
# hardening checks want) and stripped (-s -w: a .deb ships no debug info).
GOFLAGS="${GOFLAGS:+$GOFLAGS }-buildmode=pie" make --no-print-directory install DESTDIR="$root" \
	PREFIX=/usr SBINDIR=/usr/sbin UNITDIR=/lib/systemd/system DOCDIR=/usr/share/doc/popspool \
	LDFLAGS="-s -w -X example.org/popspool/shared/service.Version=$version" >/dev/null

install -d "$root/usr/share/man/man8" "$root/usr/share/lintian/overrides"
for m in dist/debian/man/*.8; do
	gzip -9n <"$m" >"$root/usr/share/man/man8/$(basename "$m").gz"
done
install -m 0644 dist/debian/copyright "$pkgdoc/copyright"
install -m 0644 dist/debian/lintian-overrides "$root/usr/share/lintian/overrides/popspool"
{
	echo "popspool ($version) unstable; urgency=medium"
	echo
	echo "  * Built by make deb from git $(git rev-parse --short HEAD 2>/dev/null || echo unknown)."
	echo
	echo " -- $maint  $(date -R -d "@$(git log -1 --format=%ct 2>/dev/null || date +%s)")"
} | gzip -9n >"$pkgdoc/changelog.Debian.gz"
chmod 0644 "$pkgdoc/changelog.Debian.gz"

install -d -m 0755 "$root/DEBIAN"
for s in postinst prerm postrm; do
	install -m 0755 "dist/debian/$s" "$root/DEBIAN/$s"
done
# Every file under /etc is a conffile: dpkg keeps an edited one and asks.
(cd "$root" && find etc -type f | sed 's#^#/#' | sort) >"$root/DEBIAN/conffiles"
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) >"$root/DEBIAN/md5sums"

# libc6 (>= x) from the symbols the binaries use.
mkdir -p "$stage/src/debian"
printf 'Source: popspool\n\nPackage: popspool\nArchitecture: any\n' >"$stage/src/debian/control"
shlibs=$(cd "$stage/src" && dpkg-shlibdeps -O "$root"/usr/sbin/* 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)

# procps: /bin/kill, which the units' ExecReload runs (not in a minbase
# Debian: systemd-test found a reload failing with 203/EXEC without it).
cat >"$root/DEBIAN/control" <<EOF
Package: popspool
Version: $version
Architecture: $arch
Maintainer: $maint
Installed-Size: $size
Depends: ${shlibs:-libc6}, procps, systemd-sysusers, systemd-tmpfiles
Recommends: systemd
Suggests: default-mta | mail-transport-agent, dovecot-lmtpd
Section: mail
Priority: optional
Homepage: https://example.org/popspool
Description: POP3-to-SMTP mail connector that never loses a message
 popspool brings mail home from the POP3 mailboxes at an ISP, every message
 exactly once, and hands it to the local mail server over SMTP or LMTP, or
 into a Maildir. Three daemons share one spool: fetchd (POP3 into the
 spool), rewrited (routing to local recipients) and deliverd (delivery).
 .
 The package installs the binaries, the systemd units (popspool.target),
 the popspool user (sysusers.d), the spool and config folders (tmpfiles.d),
 an example config and the operator's documentation. It enables and starts
 nothing: copy /etc/popspool/popspool.toml.example to popspool.toml, edit
 it, then "systemctl enable --now popspool.target".
EOF

mkdir -p "$out"
deb=$out/popspool_${version}_${arch}.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
