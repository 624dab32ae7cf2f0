#!/bin/sh
# busybox ash (the images' /bin/sh) supports pipefail.
# shellcheck disable=SC3040
# Meilisearch dump through its API (POST /dumps, then the task until it
# succeeds), copied from the Meilisearch pod's dump directory into
# $BACKUP_DIR with `kubectl exec` and removed from the pod.
# Needs: MEILI_URL, MEILI_MASTER_KEY, MEILI_NAMESPACE, MEILI_POD,
# MEILI_CONTAINER, MEILI_DUMP_DIR, DUMP_TIMEOUT (seconds).
set -eu -o pipefail
auth="Authorization: Bearer $MEILI_MASTER_KEY"
k() { kubectl --namespace "$MEILI_NAMESPACE" "$@"; }

task=$(curl -fsS -X POST -H "$auth" "$MEILI_URL/dumps" | jq -er .taskUid)
deadline=$(($(date +%s) + DUMP_TIMEOUT))
while :; do
  body=$(curl -fsS -H "$auth" "$MEILI_URL/tasks/$task")
  status=$(printf '%s' "$body" | jq -r .status)
  case "$status" in
    succeeded) break ;;
    failed | canceled)
      echo "meilisearch dump task $task $status: $(printf '%s' "$body" | jq -c .error)" >&2
      exit 1
      ;;
  esac
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "meilisearch dump task $task still $status after ${DUMP_TIMEOUT}s" >&2
    exit 1
  fi
  sleep 5
done

uid=$(printf '%s' "$body" | jq -er .details.dumpUid)
ts=$(date -u +%Y%m%dT%H%M%SZ)
file="$TARGET-$ts.dump"
k exec "$MEILI_POD" -c "$MEILI_CONTAINER" -- cat "$MEILI_DUMP_DIR/$uid.dump" >"$BACKUP_DIR/$file.partial"
k exec "$MEILI_POD" -c "$MEILI_CONTAINER" -- rm -f "$MEILI_DUMP_DIR/$uid.dump"
gzip -t "$BACKUP_DIR/$file.partial"
mv "$BACKUP_DIR/$file.partial" "$BACKUP_DIR/$file"

# Our own file names (no spaces): ls | grep is safe here.
# shellcheck disable=SC2010
ls -1 "$BACKUP_DIR" | grep -E "^$TARGET-[0-9TZ]+\.dump\$" | sort -r | tail -n +$((KEEP + 1)) |
  while read -r old; do rm -f "$BACKUP_DIR/$old"; done
echo "backup written: $BACKUP_DIR/$file (dump $uid)"
