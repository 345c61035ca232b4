#!/usr/bin/env python3
"""A sensor written the way Attune's sensor documentation describes one.

It reads its rule instances from ATTUNE_SENSOR_TRIGGERS (each: the rule's
id and ref, the trigger_ref, and config = the rule's trigger_params) and
posts, for each instance, an event to {ATTUNE_API_URL}/events with the
trigger type and trigger_instance_id "rule_<id>", every 0.2 s, until
SIGTERM. Its payload says what it was given, so a test can check it.
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
instances = json.loads(os.environ.get("ATTUNE_SENSOR_TRIGGERS", "[]"))
types = json.loads(os.environ.get("ATTUNE_SENSOR_TRIGGER_TYPES", "[]"))
pack = os.environ.get("ATTUNE_PACK_REF", "")

while running:
    for inst in instances:
        body = json.dumps({
            "trigger_type": inst["trigger_ref"],
            "trigger_instance_id": "rule_%d" % inst["id"],
            "payload": {"rule": inst["ref"], "config": inst.get("config") or {}, "types": types, "pack": pack},
        }).encode()
        req = urllib.request.Request(api + "/events", data=body, method="POST",
                                     headers={"Authorization": "Bearer " + token,
                                              "Content-Type": "application/json"})
        try:
            urllib.request.urlopen(req, timeout=5).read()
        except (urllib.error.HTTPError, OSError) as e:
            print("event failed: %s" % e, file=sys.stderr, flush=True)
    time.sleep(0.2)
