#!/bin/sh
# Hostile: leaves a daemon in a session of its own, then kills and tries to
# freeze the sandbox helper that supervises it, and ignores SIGTERM. Its
# daemon's command line holds this program's path ("$0-daemon").
setsid sh -c 'trap "" TERM HUP INT; while :; do sleep 1; done' "$0-daemon" </dev/null >/dev/null 2>&1 &
sleep 0.2
kill -9 "$PPID" 2>/dev/null
kill -STOP "$PPID" 2>/dev/null
kill -9 1 2>/dev/null
kill -STOP 1 2>/dev/null
echo "attacked the helper (parent $PPID)"
trap '' TERM
while :; do sleep 1; done
