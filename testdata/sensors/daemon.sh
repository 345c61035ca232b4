#!/bin/sh
# A sensor that leaves a setsid daemon behind, for the "nothing outlives its
# sensor" test: the daemon is `sleep 987654`, which the test looks for in
# /proc after the sensor is stopped.
setsid sleep 987654 &
echo "daemon.sh: started a setsid daemon" >&2
while :; do sleep 1; done
