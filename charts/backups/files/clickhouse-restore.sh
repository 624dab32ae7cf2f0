#!/bin/sh
# busybox ash (the images' /bin/sh) supports pipefail.
# shellcheck disable=SC3040
# Restore $RESTORE_FILE (a tar of clickhouse-backup.sh): for every database in
# it, drop the objects it lists (views first), recreate the tables, load their
# data, then recreate views and dictionaries. Objects not in the backup stay.
set -eu -o pipefail
umask 077
path="$BACKUP_DIR/$RESTORE_FILE"
if [ ! -s "$path" ]; then
  echo "restore: $path is missing or empty; backups present:" >&2
  ls -1 "$BACKUP_DIR" >&2
  exit 1
fi
cat > /tmp/client.xml <<XML
<config>
  <host>$CH_HOST</host>
  <port>$CH_PORT</port>
  <user>$CH_USER</user>
  <password>$CH_PASSWORD</password>
</config>
XML
q() { clickhouse-client --config-file=/tmp/client.xml "$@" </dev/null; }
qin() { clickhouse-client --config-file=/tmp/client.xml "$@"; }
tab=$(printf '\t')
work="$BACKUP_DIR/.restore-$$"
mkdir -p "$work"
trap 'rm -rf "$work"' EXIT
tar -xf "$path" -C "$work"

while read -r db; do
  sed 's/^CREATE DATABASE /CREATE DATABASE IF NOT EXISTS /' "$work/$db.database.sql" | qin
  # Drop views and dictionaries first, so that reloading a table does not feed
  # an old materialized view.
  sort -t "$tab" -k2,2r "$work/$db.tables.tsv" | while IFS="$tab" read -r table schema_only; do
    q --query "DROP TABLE IF EXISTS \`$db\`.\`$table\` SYNC"
  done
  while IFS="$tab" read -r table schema_only; do
    qin <"$work/$db.$table.sql"
    if [ "$schema_only" = 0 ]; then
      gunzip -c "$work/$db.$table.native.gz" | qin --query "INSERT INTO \`$db\`.\`$table\` FORMAT Native"
    fi
  done <"$work/$db.tables.tsv"
done <"$work/databases.txt"
echo "restored $path into $CH_HOST"
