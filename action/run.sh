#!/usr/bin/env bash
# Runs rotor with the action's inputs (action.yml, second step). Inputs arrive as environment
# variables, never interpolated into this script, and become arguments one by one.
set -euo pipefail
case "${INPUT_COMMAND:-}" in
  plan | apply | rollback | drift | report | status | validate) ;;
  *)
    echo "::error title=rotor::input command must be plan, apply, rollback, drift, report, status or validate"
    exit 2
    ;;
esac
args=("$INPUT_COMMAND")
if [ -n "${INPUT_CONFIG:-}" ]; then args+=(--config "$INPUT_CONFIG"); fi
case "${INPUT_FORMAT:-text}" in
  text | json) args+=(--format "${INPUT_FORMAT:-text}") ;;
  *) echo "::error title=rotor::input format must be text or json"; exit 2 ;;
esac
if [ "$INPUT_COMMAND" = rollback ]; then
  if [ -n "${INPUT_ROTATION_ID:-}" ]; then args+=(--rotation-id "$INPUT_ROTATION_ID"); fi
  if [ -n "${INPUT_REASON:-}" ]; then args+=(--reason "$INPUT_REASON"); fi
fi
case "${INPUT_DRY_RUN:-false}" in
  true)
    case "$INPUT_COMMAND" in
      apply | rollback) args+=(--dry-run) ;;
      *) echo "::error title=rotor::dry-run applies to apply and rollback only"; exit 2 ;;
    esac
    ;;
  false | "") ;;
  *) echo "::error title=rotor::input dry-run must be true or false"; exit 2 ;;
esac
# An empty optional token is no token: rotor then falls back as documented.
for var in ROTOR_ORG_TOKEN ROTOR_APP_TOKEN; do
  if [ -z "${!var:-}" ]; then unset "$var"; fi
done
exec "${ROTOR_BIN:?}" "${args[@]}"
