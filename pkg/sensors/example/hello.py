#!/usr/bin/env python3
"""attunectl's example sensor, written to Attune's sensor contract.

Every interval_seconds (from its trigger's config, default 2 seconds)
it posts one event to each trigger it was handed in ATTUNE_SENSOR_TRIGGERS,
with a counter, the host's load average and the time, to
$ATTUNE_API_URL/events with the bearer token $ATTUNE_API_TOKEN. It uses
only Python's standard library and stops on SIGTERM.

Install it with `attunectl sensor add --example`; a worker that has Python 3
(`attunectl runtime verify core.sensor.python`) claims and runs it.
"""
import json
import os
import signal
import sys
import time
import urllib.error
import urllib.request

running = True


def stop(signum, frame):
    global running
    running = False


signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, stop)

api = os.environ["ATTUNE_API_URL"].rstrip("/")
token = os.environ["ATTUNE_API_TOKEN"]
triggers = json.loads(os.environ.get("ATTUNE_SENSOR_TRIGGERS") or "[]")


def interval(trigger):
    value = (trigger.get("config") or {}).get("interval_seconds", 2)
    return min(max(float(value), 0.1), 3600.0)


def post(trigger, n):
    body = json.dumps({
        "trigger_ref": trigger["trigger_ref"],
        "payload": {"n": n, "loadavg": os.getloadavg()[0], "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
    }).encode()
    req = urllib.request.Request(api + "/events", data=body, method="POST",
                                 headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    try:
        urllib.request.urlopen(req, timeout=5).read()
    except urllib.error.HTTPError as e:
        print(f"event for {trigger['trigger_ref']} refused: HTTP {e.code}", file=sys.stderr, flush=True)
    except OSError as e:
        print(f"event for {trigger['trigger_ref']} failed: {e}", file=sys.stderr, flush=True)


print(f"example sensor started with {len(triggers)} trigger(s)", flush=True)
n, due = 0, {}
while running:
    now = time.monotonic()
    for i, t in enumerate(triggers):
        if now >= due.get(i, 0):
            n += 1
            post(t, n)
            due[i] = now + interval(t)
    time.sleep(0.1)
print("example sensor stopped", flush=True)
