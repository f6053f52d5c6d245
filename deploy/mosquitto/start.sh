#!/bin/sh
# Starts Mosquitto with the project's config (deploy/mosquitto/mosquitto.conf) and password authentication, for
# docker-compose.yml. The config file stays anonymous so that the embedded broker of the demo and the tests can use
# it as it is; here its `allow_anonymous` becomes false and a password file is written from the environment:
#   MQTT_PASSWORD       (required) user `stadtpuls`: the hub's ingest and the demo simulator
#   MQTT_LNS_PASSWORD   (optional) user `lns`: a ChirpStack MQTT integration publishing into this broker
set -eu
: "${MQTT_PASSWORD:?set MQTT_PASSWORD}"
conf="${MOSQUITTO_CONF:-/mosquitto/config/mosquitto.conf}"
run="${MOSQUITTO_RUN_DIR:-/tmp/stadtpuls-mosquitto}"
mkdir -p "$run"
passwd="$run/passwd"
rm -f "$passwd"
touch "$passwd"
chmod 0600 "$passwd"
mosquitto_passwd -b "$passwd" stadtpuls "$MQTT_PASSWORD"
if [ -n "${MQTT_LNS_PASSWORD:-}" ]; then
    mosquitto_passwd -b "$passwd" lns "$MQTT_LNS_PASSWORD"
fi
# Mosquitto drops root privileges to its own user before it reads the password file.
if [ "$(id -u)" = 0 ] && id mosquitto >/dev/null 2>&1; then
    chown mosquitto "$passwd"
fi
sed -e 's/^allow_anonymous .*/allow_anonymous false/' "$conf" > "$run/mosquitto.conf"
printf 'password_file %s\n' "$passwd" >> "$run/mosquitto.conf"
exec "${MOSQUITTO_BIN:-/usr/sbin/mosquitto}" -c "$run/mosquitto.conf"
