#!/bin/sh
# Create the dedicated user the sensor worker runs as, and the config dir.
set -e
if ! getent group attune >/dev/null 2>&1; then
	groupadd --system attune
fi
if ! getent passwd attune >/dev/null 2>&1; then
	useradd --system --gid attune --home-dir /var/lib/attune --create-home --shell /usr/sbin/nologin attune
fi
mkdir -p /etc/attune
chown root:attune /etc/attune
chmod 0750 /etc/attune
# The service reads its config as the attune user; the file holds the
# database password, so it stays unreadable to others.
if [ -f /etc/attune/config.yaml ]; then
	chgrp attune /etc/attune/config.yaml
	chmod 0640 /etc/attune/config.yaml
fi
if command -v systemctl >/dev/null 2>&1; then
	systemctl daemon-reload >/dev/null 2>&1 || true
fi
