#!/bin/sh
# Stands in for `docker exec -i NAME CMD...` in the runner tests: checks the words a wrapper prefix
# puts before the command, marks the environment, then runs the command as docker would.
if [ "$1" != "exec" ] || [ "$2" != "-i" ] || [ -z "$3" ]; then
  echo "fake-docker-exec: expected 'exec -i NAME CMD...', got: $1 $2 $3" >&2
  exit 125
fi
MEMLENS_TEST_CONTAINER=$3
export MEMLENS_TEST_CONTAINER
shift 3
exec "$@"
