# A Redis server of the Swarm stack (compose/swarm.yaml), started as the
# primary or as a replica of it: `sh redis-server.sh <own service name>`.
#
# The sentinels know which server is the primary now; a server that starts
# again after a failover (its task restarted, or its host back) must not claim
# the role it had before, or clients would write to two primaries. Only when
# no sentinel answers (the stack's first start) does `redis` start as the
# primary. Servers announce their service name, not their address, which
# changes with every restart: the sentinels hand that name to the clients.
set -eu
self=$1
initial_primary=redis
password=$(cat /run/secrets/redis_password)

primary=
for address in $(getent ahosts redis-sentinel | awk '{ print $1 }' | sort -u); do
    primary=$(REDISCLI_AUTH=$password redis-cli -t 2 -h "$address" -p 26379 \
        sentinel get-master-addr-by-name airflow-ha 2>/dev/null | head -n 1) || primary=
    [ -n "$primary" ] && break
done
if [ -z "$primary" ]; then
    echo "no sentinel answers: starting as on a new stack ($initial_primary is the primary)"
    primary=$initial_primary
fi
if [ "$primary" = "$self" ]; then
    echo "starting as the primary"
    replicaof=
else
    echo "starting as a replica of $primary"
    replicaof="replicaof $primary 6379"
fi

# The password through the configuration on stdin, not the command line.
exec redis-server - <<CONF
requirepass $password
masterauth $password
appendonly yes
replica-announce-ip $self
$replicaof
CONF
