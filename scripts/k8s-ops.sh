#!/usr/bin/env bash
# Operator commands against a deployed sciner (kubectl context and namespace of your cluster).
# They need the retrainer's MLflow account (the API's account is read-only), so they run where
# the retrainer runs, with or without the retrain-cronjob component:
#   * scheduler Deployment (default):  kubectl exec deploy/sciner-retrainer -- sciner ...
#   * retrain-cronjob component:       a one-off Job from the CronJob's template (same image,
#                                       Secrets, volume and NetworkPolicy labels), args replaced
#
#   scripts/k8s-ops.sh bootstrap            # one round now: registers and promotes the first champion
#   scripts/k8s-ops.sh rollback             # champion back to the previous one
#   scripts/k8s-ops.sh promote <version> [reason]   # champion to <version> (sciner promote),
#                                           # recorded as promoted by $USER (or PROMOTED_BY)
#   NAMESPACE=sciner KUBECTL=kubectl scripts/k8s-ops.sh ...
set -euo pipefail

NS=${NAMESPACE:-sciner}
KUBECTL=${KUBECTL:-kubectl}
k() { "$KUBECTL" -n "$NS" "$@"; }

case "${1:-}" in
  bootstrap) args=(sciner retrain --once) ;;
  rollback) args=(sciner rollback) ;;
  promote)
    [ -n "${2:-}" ] || { echo "usage: $0 promote <version> [reason]" >&2; exit 64; }
    args=(sciner promote --version "$2" --by "${PROMOTED_BY:-${USER:-operator}}")
    [ -z "${3:-}" ] || args+=(--reason "$3") ;;
  *) echo "usage: $0 bootstrap | rollback | promote <version> [reason]" >&2; exit 64 ;;
esac

if k get deployment/sciner-retrainer >/dev/null 2>&1; then
  echo "+ kubectl -n $NS exec deploy/sciner-retrainer -- ${args[*]}" >&2
  exec "$KUBECTL" -n "$NS" exec deploy/sciner-retrainer -- "${args[@]}"
fi

if ! k get cronjob/sciner-retrain >/dev/null 2>&1; then
  echo "neither deployment/sciner-retrainer nor cronjob/sciner-retrain in namespace $NS" >&2
  exit 69
fi
job="sciner-$1-$(date +%Y%m%d%H%M%S)"
echo "+ kubectl -n $NS create job $job --from=cronjob/sciner-retrain (args: ${args[*]})" >&2
# The Job gets the CronJob's pod template; replace the container's args (and, for the short
# commands, the heartbeat probes, which only a training run refreshes).
k create job "$job" --from=cronjob/sciner-retrain --dry-run=client -o json \
  | python3 -c '
import json, sys
job = json.load(sys.stdin)
command, args = sys.argv[1], sys.argv[2:]
container = job["spec"]["template"]["spec"]["containers"][0]
container["args"] = args
if command != "bootstrap":
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        container.pop(probe, None)
json.dump(job, sys.stdout)
' "$1" "${args[@]}" \
  | k create -f -
limit=${TIMEOUT_SECONDS:-21600}
[ "$1" = bootstrap ] || limit=${TIMEOUT_SECONDS:-600}
deadline=$((SECONDS + limit))
while :; do
  done_=$(k get "job/$job" -o jsonpath='{.status.conditions[?(@.type=="Complete")].status}')
  failed=$(k get "job/$job" -o jsonpath='{.status.conditions[?(@.type=="Failed")].status}')
  if [ "$done_" = True ]; then
    k logs "job/$job"
    exit 0
  fi
  if [ "$failed" = True ] || [ "$SECONDS" -ge "$deadline" ]; then
    k logs "job/$job" --tail=50 >&2 || true
    echo "job/$job did not complete; see: kubectl -n $NS describe job/$job" >&2
    exit 1
  fi
  sleep 5
done
