#!/usr/bin/env bash
# Install the Debian servers and peer tools the integration tests and benchmarks use.
# Safe to re-run. Needs root; on a machine without root the tests skip (or fail under
# XFER_REQUIRE_SERVERS=1).
set -euo pipefail
if [ "$(id -u)" != 0 ]; then
    echo "install-servers: not root, skipping Debian packages" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
echo "postfix postfix/mailname string localhost.localdomain" | debconf-set-selections
apt-get update -q
# INN2's post-install refuses a host name without a domain; give inn.conf one and
# finish the configuration ourselves when apt-get stops there.
fix_inn() {
    if [ -f /etc/news/inn.conf ] && ! grep -qE '^domain:[[:space:]]*[^[:space:]]' /etc/news/inn.conf; then
        sed -i -E 's/^#?[[:space:]]*domain:.*$/domain: localdomain/' /etc/news/inn.conf
        grep -qE '^domain:' /etc/news/inn.conf || echo "domain: localdomain" >> /etc/news/inn.conf
    fi
    # inn2 adds a mail alias with newaliases, which fails while Postfix has no main.cf
    # ("No configuration" above); an empty one is enough, the tests bring their own.
    mkdir -p /etc/postfix && touch /etc/postfix/main.cf
    dpkg --configure -a
}
apt-get install -y -q vsftpd inn2 postfix dovecot-pop3d dovecot-imapd lftp rclone spamassassin chromium redis-server || fix_inn
# rabid (POP3 load), a peer of benchmarks/bench_mail_sessions.py
apt-get install -y -q postal
fix_inn
for bin in /usr/sbin/vsftpd /usr/lib/news/bin/innd /usr/sbin/postfix /usr/sbin/dovecot /usr/bin/lftp /usr/bin/rclone /usr/bin/redis-server; do
    test -x "$bin" || { echo "install-servers: $bin missing after install" >&2; exit 1; }
done
