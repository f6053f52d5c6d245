#!/bin/sh
# Starts Mosquitto with the project's config (deploy/mosquitto/mosquitto.conf) for docker-compose.yml, with
# password authentication and one role per user. The config file stays anonymous so that the embedded broker of the
# demo and the tests can use it as it is; here its `allow_anonymous` becomes false, and a password file and an ACL
# file are written from the environment:
#   MQTT_PASSWORD            (required) user `stadtpuls`, the hub's ingest: may only subscribe to the
#                            network-server topics (The Things Stack v3/..., ChirpStack application/...), nothing else
#   MQTT_LNS_PASSWORD        (optional) user `lns`, a ChirpStack MQTT integration: may only publish the events of its
#                            own applications, application/<id>/device/+/event/+
#   MQTT_LNS_APPLICATIONS    ChirpStack application ids (UUIDs) the `lns` user publishes for, separated by spaces or
#                            commas; unset: any application
#   MQTT_SIMULATOR_PASSWORD  (optional) user `simulator`, the sensor simulator (compose profile demo): may only
#                            publish network-server messages
#   MQTT_TLS_CERT_FILE, MQTT_TLS_KEY_FILE (optional, together): a TLS listener on MQTT_TLS_PORT (default 8883) with
#                            that certificate chain and key (PEM, readable by the mosquitto user)
# Client ids are bound to users (`use_username_as_clientid`): whatever client id a client sends, its session is
# its user name's, so no user can take over another's session (the ingest's persistent one above all). A second
# ingest worker on a shared subscription therefore needs a user of its own (add it to the password and ACL files).
# The user `health` has a random password made at each start (in $MOSQUITTO_RUN_DIR/health.pw) and may only read
# $SYS/broker/version, for the container's health check.
set -eu
: "${MQTT_PASSWORD:?set MQTT_PASSWORD}"
conf="${MOSQUITTO_CONF:-/mosquitto/config/mosquitto.conf}"
run="${MOSQUITTO_RUN_DIR:-/tmp/stadtpuls-mosquitto}"
mkdir -p "$run"
passwd="$run/passwd"
acl="$run/acl"
rm -f "$passwd" "$acl"
touch "$passwd"
chmod 0600 "$passwd"

health_pw=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
printf '%s\n' "$health_pw" > "$run/health.pw"
chmod 0644 "$run/health.pw"

mosquitto_passwd -b "$passwd" stadtpuls "$MQTT_PASSWORD"
mosquitto_passwd -b "$passwd" health "$health_pw"
{
    echo "# written by start.sh at every start: one role per user, nothing for anyone else"
    echo "user stadtpuls"
    echo "topic read v3/+/devices/+/+"
    echo "topic read application/+/device/+/event/+"
    echo "user health"
    echo "topic read \$SYS/broker/version"
} > "$acl"

if [ -n "${MQTT_LNS_PASSWORD:-}" ]; then
    mosquitto_passwd -b "$passwd" lns "$MQTT_LNS_PASSWORD"
    echo "user lns" >> "$acl"
    apps=$(printf '%s' "${MQTT_LNS_APPLICATIONS:-}" | tr ',' ' ')
    if [ -z "$apps" ]; then
        apps="+"
    fi
    for app in $apps; do
        case "$app" in
            */*|*'#'*) echo "MQTT_LNS_APPLICATIONS: not an application id: $app" >&2; exit 2 ;;
        esac
        echo "topic write application/$app/device/+/event/+" >> "$acl"
    done
fi
if [ -n "${MQTT_SIMULATOR_PASSWORD:-}" ]; then
    mosquitto_passwd -b "$passwd" simulator "$MQTT_SIMULATOR_PASSWORD"
    {
        echo "user simulator"
        echo "topic write v3/+/devices/+/+"
        echo "topic write application/+/device/+/event/+"
    } >> "$acl"
fi

# Mosquitto drops root privileges to its own user before it reads the password and ACL files.
if [ "$(id -u)" = 0 ] && id mosquitto >/dev/null 2>&1; then
    chown mosquitto "$passwd" "$acl"
fi
{
    sed -e 's/^allow_anonymous .*/allow_anonymous false/' "$conf"
    echo "password_file $passwd"
    echo "acl_file $acl"
    echo "use_username_as_clientid true"
    if [ -n "${MQTT_TLS_CERT_FILE:-}" ] || [ -n "${MQTT_TLS_KEY_FILE:-}" ]; then
        : "${MQTT_TLS_CERT_FILE:?set MQTT_TLS_CERT_FILE with MQTT_TLS_KEY_FILE}"
        : "${MQTT_TLS_KEY_FILE:?set MQTT_TLS_KEY_FILE with MQTT_TLS_CERT_FILE}"
        echo "listener ${MQTT_TLS_PORT:-8883}"
        echo "protocol mqtt"
        echo "certfile $MQTT_TLS_CERT_FILE"
        echo "keyfile $MQTT_TLS_KEY_FILE"
    fi
} > "$run/mosquitto.conf"
exec "${MOSQUITTO_BIN:-/usr/sbin/mosquitto}" -c "$run/mosquitto.conf"
