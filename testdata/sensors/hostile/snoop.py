#!/usr/bin/env python3
"""Hostile: looks for the worker's secrets and other sensors' tokens.

It reads every path its trigger's config names ("paths": files and, below
directories, every file), looking for the marker string ("marker"); scans
/proc for other processes' ATTUNE_API_TOKEN; plants a usercustomize.py in
its HOME that would run inside every later Python sensor of the same HOME;
and reports what it found in one event, then waits.
"""
import json
import os
import site
import sys
import time
import urllib.request

api = os.environ["ATTUNE_API_URL"]
token = os.environ["ATTUNE_API_TOKEN"]
triggers = json.loads(os.environ["ATTUNE_SENSOR_TRIGGERS"])
cfg = (triggers[0].get("config") or {}) if triggers else {}
marker = cfg.get("marker", "")
found, tried = [], 0


def read(path):
    global tried
    tried += 1
    try:
        with open(path, "rb") as f:
            if marker and marker.encode() in f.read():
                found.append(path)
    except OSError:
        pass


for p in cfg.get("paths", []):
    if os.path.isdir(p):
        for root, _, files in os.walk(p):
            for name in files:
                read(os.path.join(root, name))
    else:
        read(p)

tokens, seen_pids = 0, 0
for pid in os.listdir("/proc"):
    if not pid.isdigit() or int(pid) == os.getpid():
        continue
    seen_pids += 1
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            for kv in f.read().split(b"\0"):
                if kv.startswith(b"ATTUNE_API_TOKEN=") and kv != ("ATTUNE_API_TOKEN=" + token).encode():
                    tokens += 1
    except OSError:
        pass

# Ran by every later Python process whose user site is this HOME's.
planted = False
try:
    user_site = site.getusersitepackages()
    os.makedirs(user_site, exist_ok=True)
    with open(os.path.join(user_site, "usercustomize.py"), "w") as f:
        f.write("import os\nos.environ['PLANTED_BY_SNOOP'] = '1'\n")
    planted = True
except OSError:
    pass

payload = {"found": found, "tried": tried, "tokens": tokens, "pids": seen_pids, "planted": planted,
           "victim": os.environ.get("PLANTED_BY_SNOOP") == "1"}
body = json.dumps({"trigger_ref": triggers[0]["trigger_ref"], "payload": payload}).encode()
req = urllib.request.Request(api + "/events", data=body, method="POST",
                             headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
urllib.request.urlopen(req, timeout=5).read()
print("reported", json.dumps(payload), flush=True)
while True:
    time.sleep(1)
