#!/bin/bash
# Entrypoint of the MySQL stand-in: the subset of the official image's
# entrypoint that this project relies on.
set -euo pipefail

DATADIR=/var/lib/mysql
SOCKET=/var/run/mysqld/init.sock

log() { echo "mysql-entrypoint: $*"; }

# Options only ("--foo"): they are for mysqld, as with the official image.
if [ "${1:0:1}" = '-' ]; then
  set -- mysqld "$@"
fi
if [ "$1" != mysqld ]; then
  exec "$@"
fi
shift
server_args=(--user=mysql --datadir="$DATADIR" "$@")

sql_escape() { printf '%s' "${1//\'/\'\'}"; }

# VAR_FILE names a file holding VAR's value (Compose secrets), as with the
# official image; VAR itself wins if both are set.
file_env() {
  local var=$1 file_var="${1}_FILE"
  if [ -z "${!var:-}" ] && [ -n "${!file_var:-}" ]; then
    export "$var=$(cat "${!file_var}")"
  fi
}
file_env MYSQL_ROOT_PASSWORD
file_env MYSQL_PASSWORD

initialise() {
  : "${MYSQL_ROOT_PASSWORD:?MYSQL_ROOT_PASSWORD must be set to initialise the database}"
  log "initialising a new data directory"
  mysqld "${server_args[@]}" --initialize-insecure
  mysqld "${server_args[@]}" --skip-networking --socket="$SOCKET" &
  local pid=$!
  for _ in $(seq 60); do
    mysqladmin --socket="$SOCKET" -uroot ping >/dev/null 2>&1 && break
    sleep 1
  done
  local root_pw
  root_pw=$(sql_escape "$MYSQL_ROOT_PASSWORD")
  {
    echo "ALTER USER 'root'@'localhost' IDENTIFIED BY '$root_pw';"
    echo "CREATE USER IF NOT EXISTS 'root'@'%' IDENTIFIED BY '$root_pw';"
    echo "GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;"
    if [ -n "${MYSQL_DATABASE:-}" ]; then
      echo "CREATE DATABASE IF NOT EXISTS \`$MYSQL_DATABASE\`;"
    fi
    if [ -n "${MYSQL_USER:-}" ] && [ -n "${MYSQL_PASSWORD:-}" ]; then
      echo "CREATE USER IF NOT EXISTS '$MYSQL_USER'@'%' IDENTIFIED BY '$(sql_escape "$MYSQL_PASSWORD")';"
      if [ -n "${MYSQL_DATABASE:-}" ]; then
        echo "GRANT ALL ON \`$MYSQL_DATABASE\`.* TO '$MYSQL_USER'@'%';"
      fi
    fi
    echo "FLUSH PRIVILEGES;"
  } | mysql --socket="$SOCKET" -uroot
  for script in /docker-entrypoint-initdb.d/*; do
    case "$script" in
      *.sql) log "running $script"; MYSQL_PWD="$MYSQL_ROOT_PASSWORD" mysql --socket="$SOCKET" -uroot "${MYSQL_DATABASE:-}" < "$script" ;;
      *.sh) log "running $script"; . "$script" ;;
    esac
  done
  MYSQL_PWD="$MYSQL_ROOT_PASSWORD" mysqladmin --socket="$SOCKET" -uroot shutdown
  wait "$pid" || true
  log "initialisation done"
}

if [ ! -d "$DATADIR/mysql" ]; then
  initialise
fi
# Debian's configuration binds 127.0.0.1; a container must listen on its network.
exec mysqld "${server_args[@]}" --bind-address=0.0.0.0
