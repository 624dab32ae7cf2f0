#!/bin/sh
# busybox ash (the images' /bin/sh) supports pipefail.
# shellcheck disable=SC3040
# Logical backup of every user database of ClickHouse into one tar in
# $BACKUP_DIR: per database its CREATE statement, per table its CREATE
# statement and its data in Native format (gzip). Views and dictionaries are
# schema only and listed after the tables, so a restore creates them last.
# Connection: CH_HOST, CH_PORT (native), CH_USER, CH_PASSWORD.
set -eu -o pipefail
umask 077
cat > /tmp/client.xml <<XML
<config>
  <host>$CH_HOST</host>
  <port>$CH_PORT</port>
  <user>$CH_USER</user>
  <password>$CH_PASSWORD</password>
</config>
XML
q() { clickhouse-client --config-file=/tmp/client.xml "$@" </dev/null; }
tab=$(printf '\t')
ts=$(date -u +%Y%m%dT%H%M%SZ)
file="$TARGET-$ts.tar"
work="$BACKUP_DIR/.work-$ts"
mkdir -p "$work"
trap 'rm -rf "$work"' EXIT

q --query "SELECT name FROM system.databases WHERE name NOT IN ('system', 'information_schema', 'INFORMATION_SCHEMA') ORDER BY name FORMAT TSVRaw" >"$work/databases.txt"
while read -r db; do
  q --query "SHOW CREATE DATABASE \`$db\` FORMAT TSVRaw" >"$work/$db.database.sql"
  q --query "SELECT name, toUInt8(engine LIKE '%View' OR engine = 'Dictionary') AS schema_only FROM system.tables WHERE database = '$db' AND NOT is_temporary AND name NOT LIKE '.inner%' ORDER BY schema_only, name FORMAT TSVRaw" >"$work/$db.tables.tsv"
  while IFS="$tab" read -r table schema_only; do
    q --query "SHOW CREATE TABLE \`$db\`.\`$table\` FORMAT TSVRaw" >"$work/$db.$table.sql"
    if [ "$schema_only" = 0 ]; then
      q --query "SELECT * FROM \`$db\`.\`$table\` FORMAT Native" | gzip >"$work/$db.$table.native.gz"
    fi
  done <"$work/$db.tables.tsv"
done <"$work/databases.txt"

tar -cf "$BACKUP_DIR/$file.partial" -C "$work" .
tar -tf "$BACKUP_DIR/$file.partial" >/dev/null
mv "$BACKUP_DIR/$file.partial" "$BACKUP_DIR/$file"

# Our own file names (no spaces): ls | grep is safe here.
# shellcheck disable=SC2010
ls -1 "$BACKUP_DIR" | grep -E "^$TARGET-[0-9TZ]+\.tar\$" | sort -r | tail -n +$((KEEP + 1)) |
  while read -r old; do rm -f "$BACKUP_DIR/$old"; done
echo "backup written: $BACKUP_DIR/$file ($(wc -l <"$work/databases.txt") databases)"
