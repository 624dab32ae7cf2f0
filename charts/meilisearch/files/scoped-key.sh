#!/bin/sh
# Makes (or remakes) one scoped Meilisearch API key and writes it into a
# Secret of its consumer's namespace through the Kubernetes API. Run by the
# meilisearch chart's keys Job with:
#   MEILI_URL, MEILI_MASTER_KEY    the server and its master key
#   KEY_UID, KEY_BODY              the key's uid and its JSON (actions, indexes, ...)
#   SECRET_NAMESPACE, SECRET_NAME, SECRET_KEY   where the key goes
# A key's value is derived from the master key and its uid, so remaking it
# (to apply changed actions) gives the same value: consumers keep working.
set -o errexit -o nounset

fail() { echo "scoped-key $KEY_UID: $*" >&2; exit 1; }

i=0
until curl -fsS -o /dev/null "$MEILI_URL/health"; do
  i=$((i + 1))
  [ "$i" -lt 60 ] || fail "Meilisearch at $MEILI_URL did not answer /health in 120 s"
  sleep 2
done

meili() { curl -sS -o /tmp/body -w '%{http_code}' -H "Authorization: Bearer $MEILI_MASTER_KEY" -H 'Content-Type: application/json' "$@"; }

code=$(meili -X DELETE "$MEILI_URL/keys/$KEY_UID")
case $code in 204|404) ;; *) fail "DELETE /keys/$KEY_UID: HTTP $code: $(cat /tmp/body)" ;; esac
code=$(meili -X POST --data "$KEY_BODY" "$MEILI_URL/keys")
[ "$code" = 201 ] || fail "POST /keys: HTTP $code: $(cat /tmp/body)"
key=$(sed -n 's/.*"key":"\([0-9a-f]*\)".*/\1/p' /tmp/body)
[ -n "$key" ] || fail "POST /keys answered no key: $(cat /tmp/body)"

sa=/var/run/secrets/kubernetes.io/serviceaccount
api="https://${KUBERNETES_SERVICE_HOST}:${KUBERNETES_SERVICE_PORT}/api/v1/namespaces/$SECRET_NAMESPACE/secrets"
value=$(printf '%s' "$key" | base64 | tr -d '\n')
secret=$(printf '{"apiVersion":"v1","kind":"Secret","metadata":{"name":"%s","namespace":"%s","labels":{"app.kubernetes.io/managed-by":"meilisearch-keys"}},"type":"Opaque","data":{"%s":"%s"}}' \
  "$SECRET_NAME" "$SECRET_NAMESPACE" "$SECRET_KEY" "$value")
kube() { curl -sS -o /tmp/body -w '%{http_code}' --cacert "$sa/ca.crt" -H "Authorization: Bearer $(cat "$sa/token")" "$@"; }
# Patch only the data of an existing Secret (in dev Helm owns it, with a
# placeholder value, and keeps what is there); create it when missing.
code=$(kube -X PATCH -H 'Content-Type: application/merge-patch+json' \
  --data "$(printf '{"data":{"%s":"%s"}}' "$SECRET_KEY" "$value")" "$api/$SECRET_NAME")
if [ "$code" = 404 ]; then
  code=$(kube -X POST -H 'Content-Type: application/json' --data "$secret" "$api")
fi
case $code in 200|201) ;; *) fail "writing Secret $SECRET_NAMESPACE/$SECRET_NAME: HTTP $code: $(cat /tmp/body)" ;; esac
echo "scoped key $KEY_UID written to Secret $SECRET_NAMESPACE/$SECRET_NAME (key $SECRET_KEY)"
