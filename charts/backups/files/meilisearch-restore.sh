#!/bin/sh
# busybox ash (the images' /bin/sh) supports pipefail.
# shellcheck disable=SC3040
# Restore $RESTORE_FILE (a dump of meilisearch-backup.sh). Meilisearch imports
# a dump only at start-up: the dump is copied to the import path the
# meilisearch chart starts with (MEILI_IMPORT_DUMP), the index directory is
# moved aside, the pod is restarted and imports it; after it is Ready the
# dump and the old index are removed. On failure the old index stays in
# <db>.before-restore for a manual roll-back.
set -eu -o pipefail
path="$BACKUP_DIR/$RESTORE_FILE"
if [ ! -s "$path" ]; then
  echo "restore: $path is missing or empty; dumps present:" >&2
  ls -1 "$BACKUP_DIR" >&2
  exit 1
fi
gzip -t "$path"
k() { kubectl --namespace "$MEILI_NAMESPACE" "$@"; }
kx() { k exec -i "$MEILI_POD" -c "$MEILI_CONTAINER" -- "$@"; }

old=$(k get pod "$MEILI_POD" -o jsonpath='{.metadata.uid}')
# $1 expands in the pod's shell.
# shellcheck disable=SC2016
kx sh -c 'cat >"$1.partial" && mv "$1.partial" "$1"' sh "$MEILI_IMPORT_DUMP" <"$path"
# shellcheck disable=SC2016
kx sh -c 'rm -rf "$1.before-restore" && mv "$1" "$1.before-restore"' sh "$MEILI_DB_PATH" </dev/null
k delete pod "$MEILI_POD" --wait=true --timeout=120s

deadline=$(($(date +%s) + IMPORT_TIMEOUT))
until new=$(k get pod "$MEILI_POD" -o jsonpath='{.metadata.uid}' 2>/dev/null) && [ -n "$new" ] && [ "$new" != "$old" ]; do
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "restore: pod $MEILI_NAMESPACE/$MEILI_POD was not recreated within ${IMPORT_TIMEOUT}s" >&2
    exit 1
  fi
  sleep 2
done
k wait --for=condition=Ready "pod/$MEILI_POD" --timeout="${IMPORT_TIMEOUT}s"
kx rm -rf "$MEILI_IMPORT_DUMP" "$MEILI_DB_PATH.before-restore" </dev/null
echo "restored $path into $MEILI_NAMESPACE/$MEILI_POD"
