#!/bin/sh
# A sensor that fails at once, for the quarantine tests.
echo "crash.sh: giving up (generation $ATTUNE_SENSOR_ASSIGNMENT_GENERATION)" >&2
exit 3
