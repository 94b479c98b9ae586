# A Redis Sentinel of the Swarm stack (compose/swarm.yaml): one of three that
# watch the Redis primary, agree (two of three) that it is down after 5 s
# without an answer, and promote its replica. Clients ask them for the primary.
#
# Each starts with a configuration written here, in memory: the primary the
# other sentinels name (they may have promoted the replica since the stack
# started), else `redis`. Its identity is fixed by its Swarm task slot
# (SENTINEL_SLOT), so that a sentinel that starts again, with a new address,
# is the same sentinel to the others rather than a fourth one that would raise
# the number of votes a failover needs.
set -eu
password=$(cat /run/secrets/redis_password)
own_addresses=$(hostname -i)

primary=
for address in $(getent ahosts redis-sentinel | awk '{ print $1 }' | sort -u); do
    case " $own_addresses " in *" $address "*) continue ;; esac
    primary=$(REDISCLI_AUTH=$password redis-cli -t 2 -h "$address" -p 26379 \
        sentinel get-master-addr-by-name airflow-ha 2>/dev/null | head -n 1) || primary=
    [ -n "$primary" ] && break
done
primary=${primary:-redis}

# The primary's name must resolve before Sentinel reads it.
tries=0
until getent hosts "$primary" >/dev/null; do
    tries=$((tries + 1))
    if [ "$tries" -ge 60 ]; then
        echo "$primary does not resolve after 60 s" >&2
        exit 1
    fi
    sleep 1
done
echo "watching $primary"

myid=$(printf 'airflow-ha-sentinel-%s' "${SENTINEL_SLOT:?}" | sha1sum | cut -c 1-40)
umask 077
cat >/tmp/sentinel.conf <<CONF
port 26379
sentinel myid $myid
sentinel resolve-hostnames yes
sentinel announce-hostnames yes
requirepass $password
sentinel sentinel-pass $password
sentinel monitor airflow-ha $primary 6379 2
sentinel auth-pass airflow-ha $password
sentinel down-after-milliseconds airflow-ha 5000
sentinel failover-timeout airflow-ha 30000
sentinel parallel-syncs airflow-ha 1
CONF
exec redis-server /tmp/sentinel.conf --sentinel
