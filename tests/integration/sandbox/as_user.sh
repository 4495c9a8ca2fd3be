#!/bin/sh
# as_user.sh UID RUNNER: start the runner as an unprivileged uid with no capabilities, the way a
# host that does not run as root would (fd 3 and the other descriptors are inherited).
set -e
exec setpriv --reuid "$1" --regid "$1" --clear-groups --inh-caps=-all --bounding-set=-all "$2"
