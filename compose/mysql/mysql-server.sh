#!/bin/bash
# A member of the Swarm stack's MySQL group (compose/swarm.yaml): Group
# Replication in single-primary mode, one member per node.
#   bash mysql-server.sh <own service name> [mysqld options...]
#
# Starts the image's entrypoint (which initialises a new data directory) with
# the group's options, then joins the group when a peer is in one, or
# bootstraps it when none is: on a new stack, and after every member stopped
# (`swarm-down`, then `swarm-up`). Only the member whose transactions
# (gtid_executed) hold every answering peer's bootstraps, the lowest server
# ID among equals, once every member answers -- or, after BOOTSTRAP_WAIT_S, a
# majority: a member that never comes back must not keep the group down, and
# a majority holds every transaction the group committed.
set -euo pipefail
service=$1
shift
: "${MYSQL_SLOT:?must be the Swarm task slot}"
: "${MYSQL_SERVERS:?must be the number of members of the group}"
: "${MYSQL_GROUP_NAME:?must be the UUID of the group}"
BOOTSTRAP_WAIT_S=${MYSQL_BOOTSTRAP_WAIT_S:-60}
DATADIR=/var/lib/mysql
# Written once this data directory's users and recovery credentials are set
# up; from then on its transactions are the group's.
PREPARED=$DATADIR/airflow-ha-group-member
GROUP_PORT=33061
# A member cut off from the majority leaves the group after this many
# seconds (the majority expels it after about as long: 5 s to suspect it, 5 s
# more by group_replication_member_expel_timeout). By default it waits for
# ever, and a primary cut off so kept serving what it held: after a partition
# a returned api-server read it and answered "XCom not found" for a value the
# new primary had held for 40 s, and a run failed (README, "A run lost after
# a partition"). On leaving, in offline mode (exit_state_action) it lets in
# no client, the router's checker included; it does not try to join again by
# itself (autorejoin-tries 0: it would stay readable while trying), the
# script ends instead (below), and Swarm starts it again to join anew.
MINORITY_TIMEOUT_S=10
WATCH_INTERVAL_S=2

log() { echo "mysql-server.sh: $*"; }

root_password=$(cat /run/secrets/mysql_root_password)
repl_password=$(cat /run/secrets/mysql_replication_password)
self=$(getent ahostsv4 "$(cat /etc/hostname)" | awk '{ print $1; exit }')

# As root, over TCP: the entrypoint's initialisation server listens on a
# socket only, so an answer here is the real server's.
local_sql() { MYSQL_PWD=$root_password mysql -uroot -h127.0.0.1 -N -B "$@"; }
# As the replication user, which every prepared member has and which, unlike
# Airflow's, may log in while a member is in offline mode (below).
peer_sql() { MYSQL_PWD=$repl_password mysql -urepl -h"$1" --connect-timeout=2 -N -B -e "$2" 2>/dev/null; }
peers() { getent ahostsv4 "$service" | awk '{ print $1 }' | sort -u | grep -vxF "$self" || true; }

docker-entrypoint.sh mysqld "$@" \
    --server-id="$MYSQL_SLOT" \
    --gtid-mode=ON --enforce-gtid-consistency=ON \
    --plugin-load-add=group_replication.so --plugin-load-add=mysql_clone.so \
    --loose-group-replication-start-on-boot=OFF \
    --loose-group-replication-group-name="$MYSQL_GROUP_NAME" \
    --loose-group-replication-local-address="$self:$GROUP_PORT" \
    --loose-group-replication-single-primary-mode=ON \
    --loose-group-replication-recovery-get-public-key=ON \
    --loose-group-replication-consistency=BEFORE_ON_PRIMARY_FAILOVER \
    --loose-group-replication-unreachable-majority-timeout="$MINORITY_TIMEOUT_S" \
    --loose-group-replication-exit-state-action=OFFLINE_MODE \
    --loose-group-replication-autorejoin-tries=0 \
    --report-host="$self" \
    --offline-mode=ON &
server=$!
trap 'kill -TERM "$server" 2>/dev/null; wait "$server"; exit' TERM INT

until local_sql -e 'SELECT 1' >/dev/null 2>&1; do
    kill -0 "$server" 2>/dev/null || { wait "$server"; exit; }
    sleep 1
done

if [ ! -e "$PREPARED" ]; then
    log "preparing a new data directory for the group"
    # Made on each member alone (not written to the binary log), and the
    # initialisation's own transactions dropped: each member's history starts
    # empty, and the group's is the same on every member.
    local_sql <<SQL
SET SQL_LOG_BIN=0;
CREATE USER IF NOT EXISTS repl@'%' IDENTIFIED BY '$repl_password';
GRANT REPLICATION SLAVE, CONNECTION_ADMIN, BACKUP_ADMIN, CLONE_ADMIN, GROUP_REPLICATION_STREAM ON *.* TO repl@'%';
CREATE USER IF NOT EXISTS hacheck@'%' IDENTIFIED BY '';
GRANT SELECT ON performance_schema.replication_group_members TO hacheck@'%';
SET SQL_LOG_BIN=1;
RESET BINARY LOGS AND GTIDS;
CHANGE REPLICATION SOURCE TO SOURCE_USER='repl', SOURCE_PASSWORD='$repl_password'
  FOR CHANNEL 'group_replication_recovery';
SQL
    touch "$PREPARED"
fi
# What peer_sql asks. On every start, not only above: data directories
# prepared before it asked as this user lack it. Local, like the users.
local_sql -e "SET SQL_LOG_BIN=0; GRANT SELECT ON performance_schema.replication_group_members TO repl@'%'"

start_group() {
    local seeds
    seeds=$(peers | sed "s/\$/:$GROUP_PORT/" | paste -sd, -)
    local_sql -e "SET GLOBAL group_replication_group_seeds='$seeds'; $1"
}

waited=0
while true; do
    answered=1 online='' most_advanced=1
    mine=$(local_sql -e 'SELECT @@GLOBAL.gtid_executed')
    for peer in $(peers); do
        members=$(peer_sql "$peer" "SELECT COUNT(*) FROM performance_schema.replication_group_members WHERE MEMBER_STATE = 'ONLINE'") || continue
        if [ "$members" -gt 0 ]; then
            online=$peer
            break
        fi
        # A peer counts as answering only with its transactions compared.
        theirs=$(peer_sql "$peer" 'SELECT @@GLOBAL.gtid_executed') || continue
        their_id=$(peer_sql "$peer" 'SELECT @@GLOBAL.server_id') || continue
        answered=$((answered + 1))
        subsets=$(local_sql -e "SELECT GTID_SUBSET('$theirs', @@GLOBAL.gtid_executed), GTID_SUBSET(@@GLOBAL.gtid_executed, '$theirs')")
        read -r holds_theirs held_by_theirs <<<"$subsets"
        if [ "$holds_theirs" != 1 ] || { [ "$held_by_theirs" = 1 ] && [ "$their_id" -lt "$MYSQL_SLOT" ]; }; then
            most_advanced=
        fi
    done
    if [ -n "$online" ]; then
        log "joining the group ($online is in it)"
        if start_group 'START GROUP_REPLICATION'; then
            break
        fi
        log "could not join; trying again"
        local_sql -e 'STOP GROUP_REPLICATION' >/dev/null 2>&1 || true
    elif [ -n "$most_advanced" ] && {
        [ "$answered" -ge "$MYSQL_SERVERS" ] ||
            { [ $((answered * 2)) -gt "$MYSQL_SERVERS" ] && [ "$waited" -ge "$BOOTSTRAP_WAIT_S" ]; }
    }; then
        log "bootstrapping the group: no member is in one, $answered of $MYSQL_SERVERS answer, this one holds every transaction they hold (gtid_executed '$mine')"
        start_group 'SET GLOBAL group_replication_bootstrap_group=ON; START GROUP_REPLICATION; SET GLOBAL group_replication_bootstrap_group=OFF'
        break
    fi
    sleep 2
    waited=$((waited + 2))
done
# Offline mode (the option above) kept Airflow's clients out until now: a
# restarted member answers on its port before it is in the group, and a
# router that takes a server as up when its address resolves again (HAProxy
# does by default; compose/haproxy/mysql-router.cfg asks for a check first)
# sends it clients. Writes there would be transactions the group does not
# have, and the member could not join again.
# From here on the group decides: only the primary is writable, and only the
# primary passes the router's check.
local_sql -e 'SET GLOBAL offline_mode = OFF'
log "in the group as $self"

# Until the member leaves the group (its state ERROR or OFFLINE, or no row):
# then the server is stopped and the container ends, so that Swarm starts it
# again and the loop above joins it anew. The server ending by itself ends it
# too.
while kill -0 "$server" 2>/dev/null; do
    state=$(local_sql -e 'SELECT MEMBER_STATE FROM performance_schema.replication_group_members WHERE MEMBER_ID = @@server_uuid' 2>/dev/null) || state=unknown
    case $state in
        ONLINE | RECOVERING | unknown) ;;
        *)
            log "left the group (state '${state:-none}'); stopping, to be started again and join anew"
            kill -TERM "$server"
            wait "$server" || true
            exit 1
            ;;
    esac
    sleep "$WATCH_INTERVAL_S" &
    wait $!
done
wait "$server"
