#!/usr/bin/env python3
"""A sensor written to Attune's contract, for attunectl's end-to-end tests.

It posts an event to every trigger it was given, every TICK_SECONDS (config
key "tick_seconds", default 0.2), with its assignment generation in the
payload, using only the standard library. It stops on SIGTERM.
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

api = os.environ["ATTUNE_API_URL"]
token = os.environ["ATTUNE_API_TOKEN"]
generation = int(os.environ["ATTUNE_SENSOR_ASSIGNMENT_GENERATION"])
triggers = json.loads(os.environ["ATTUNE_SENSOR_TRIGGERS"])
tick = 0.2
for t in triggers:
    cfg = t.get("config") or {}
    tick = float(cfg.get("tick_seconds", tick))

print(f"ticker started: generation {generation}, pid {os.getpid()}", flush=True)
n = 0
while running:
    n += 1
    for t in triggers:
        body = json.dumps({"trigger_ref": t["trigger_ref"],
                           "payload": {"n": n, "generation": generation, "pid": os.getpid()}}).encode()
        req = urllib.request.Request(api + "/events", data=body, method="POST",
                                     headers={"Authorization": "Bearer " + token,
                                              "Content-Type": "application/json"})
        try:
            urllib.request.urlopen(req, timeout=5).read()
        except urllib.error.HTTPError as e:
            print(f"event refused: {e.code}", file=sys.stderr, flush=True)
            if e.code == 409:
                # The assignment moved on; the worker is stopping us.
                pass
        except OSError as e:
            print(f"event failed: {e}", file=sys.stderr, flush=True)
    time.sleep(tick)
print("ticker stopped", flush=True)
