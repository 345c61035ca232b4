#!/usr/bin/env python3
"""Hostile: forks as many processes as it can at once (200 tries), then
reports in one event how many it got, and waits."""
import json
import os
import time
import urllib.request

running = 0
for _ in range(200):
    try:
        pid = os.fork()
    except OSError:
        continue
    if pid == 0:
        time.sleep(60)
        os._exit(0)
    running += 1
trigger = json.loads(os.environ["ATTUNE_SENSOR_TRIGGERS"])[0]["trigger_ref"]
body = json.dumps({"trigger_ref": trigger, "payload": {"running": running}}).encode()
urllib.request.urlopen(urllib.request.Request(os.environ["ATTUNE_API_URL"] + "/events", data=body, method="POST",
                       headers={"Authorization": "Bearer " + os.environ["ATTUNE_API_TOKEN"],
                                "Content-Type": "application/json"}), timeout=5).read()
while True:
    time.sleep(1)
