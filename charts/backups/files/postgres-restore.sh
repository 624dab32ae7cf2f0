#!/bin/sh
# Restore $RESTORE_FILE (a dump of postgres-backup.sh) into $PGDATABASE:
# objects are dropped and recreated in one transaction.
set -eu
path="$BACKUP_DIR/$RESTORE_FILE"
if [ ! -s "$path" ]; then
  echo "restore: $path is missing or empty; dumps present:" >&2
  ls -1 "$BACKUP_DIR" >&2
  exit 1
fi
pg_restore --list "$path" >/dev/null
pg_restore --clean --if-exists --no-owner --exit-on-error --single-transaction \
  --dbname="$PGDATABASE" "$path"
echo "restored $path into $PGDATABASE on $PGHOST"
