#!/bin/sh
# Creates the Attest event topic with the settings docs/backends.md requires, or brings an existing
# topic to them, then checks what the brokers report. Runs once per `docker compose up` (service
# `kafka-init`); safe to run again.
set -eu
: "${BOOTSTRAP:?}" "${TOPIC:?}" "${PARTITIONS:?}" "${REPLICATION_FACTOR:?}" "${TOPIC_CONFIG:?}"
bin=/opt/kafka/bin

config_args=""
old_ifs=$IFS
IFS=','
for setting in $TOPIC_CONFIG; do config_args="$config_args --config $setting"; done
IFS=$old_ifs

# shellcheck disable=SC2086 # config_args is a list of words on purpose
"$bin/kafka-topics.sh" --bootstrap-server "$BOOTSTRAP" --create --if-not-exists \
  --topic "$TOPIC" --partitions "$PARTITIONS" --replication-factor "$REPLICATION_FACTOR" $config_args

# --if-not-exists leaves an existing topic as it was: converge its settings as well.
"$bin/kafka-configs.sh" --bootstrap-server "$BOOTSTRAP" --alter --entity-type topics \
  --entity-name "$TOPIC" --add-config "$TOPIC_CONFIG"

description=$("$bin/kafka-topics.sh" --bootstrap-server "$BOOTSTRAP" --describe --topic "$TOPIC")
echo "$description"
# The replication factor of an existing topic cannot be altered here; refuse a weaker one.
if ! echo "$description" | grep -q "ReplicationFactor: $REPLICATION_FACTOR"; then
  echo "kafka-init: topic $TOPIC does not have replication factor $REPLICATION_FACTOR; reassign its partitions (docs/backends.md)" >&2
  exit 1
fi
