#!/bin/sh
# One-shot: make sure the Temporal namespace stella runs in exists (temporalio/auto-setup, no
# longer built, used to create `default`). docker-compose.yml runs it from temporalio/admin-tools
# once temporalio/server is up. Safe to re-run.
set -eu
NAMESPACE=${NAMESPACE:-default}
host=${TEMPORAL_ADDRESS%:*}
port=${TEMPORAL_ADDRESS##*:}
# The CLI is given the IPv4 address: the name can also resolve to an address the server does not bind.
ip=$(getent ahostsv4 "$host" | awk 'NR==1 { print $1 }')
addr="${ip:-$host}:$port"
tries=0
until temporal operator cluster health --address "$addr"; do
  tries=$((tries + 1))
  [ "$tries" -lt 30 ] || { echo "temporal-namespace: $addr not healthy after $tries tries"; exit 1; }
  sleep 2
done
temporal operator namespace describe -n "$NAMESPACE" --address "$addr" >/dev/null 2>&1 \
  || temporal operator namespace create -n "$NAMESPACE" --address "$addr"
echo "temporal-namespace: $NAMESPACE ready"
