#!/bin/sh
# Hostile: a sensor whose stop never finishes: it ignores SIGTERM and
# freezes the process that would kill it (its parent, and PID 1).
trap '' TERM
kill -STOP "$PPID" 2>/dev/null
kill -STOP 1 2>/dev/null
echo "froze the helper (parent $PPID)"
while :; do sleep 1; done
