#!/bin/sh
# pg_dump of one PostgreSQL database into $BACKUP_DIR (custom format), then a
# restore rehearsal into a scratch database on the same server
# ($VERIFY_RESTORE=true), then retention ($KEEP newest dumps are kept).
# Connection: PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE.
set -eu
ts=$(date -u +%Y%m%dT%H%M%SZ)
file="$TARGET-$ts.dump"
pg_dump --format=custom --no-owner --file="$BACKUP_DIR/$file.partial"
mv "$BACKUP_DIR/$file.partial" "$BACKUP_DIR/$file"
pg_restore --list "$BACKUP_DIR/$file" >/dev/null

if [ "$VERIFY_RESTORE" = true ]; then
  scratch="restore_check_$(date -u +%s)"
  createdb "$scratch"
  trap 'dropdb --if-exists "$scratch"' EXIT
  pg_restore --no-owner --exit-on-error --dbname="$scratch" "$BACKUP_DIR/$file"
  count="select count(*) from information_schema.tables where table_schema not in ('pg_catalog', 'information_schema')"
  want=$(psql --no-psqlrc --tuples-only --no-align --command="$count")
  got=$(psql --no-psqlrc --tuples-only --no-align --dbname="$scratch" --command="$count")
  if [ "$want" != "$got" ]; then
    echo "restore rehearsal of $file: $got tables restored, $want in $PGDATABASE" >&2
    exit 1
  fi
fi

# Our own file names (no spaces): ls | grep is safe here.
# shellcheck disable=SC2010
ls -1 "$BACKUP_DIR" | grep -E "^$TARGET-[0-9TZ]+\.dump\$" | sort -r | tail -n +$((KEEP + 1)) |
  while read -r old; do rm -f "$BACKUP_DIR/$old"; done
echo "backup written: $BACKUP_DIR/$file"
