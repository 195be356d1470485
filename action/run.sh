#!/usr/bin/env bash
# Runs rotor with the action's inputs (action.yml, second step). Inputs arrive as environment
# variables, never interpolated into this script, and become arguments one by one.
set -euo pipefail
case "${INPUT_COMMAND:-}" in
  plan | apply | rollback | countersign | drift | report | status | validate | verify | evidence) ;;
  *)
    echo "::error title=rotor::input command must be plan, apply, rollback, countersign, drift, report, status, validate, verify or evidence"
    exit 2
    ;;
esac
args=("$INPUT_COMMAND")
# A checkout in a sub-path of the workspace (actions/checkout's `path:`): the same rule as
# actions/checkout, a relative path that stays under the workspace.
if [ -n "${INPUT_PATH:-}" ]; then
  case "/$INPUT_PATH/" in
    //* | */../*)
      echo "::error title=rotor::input path must be relative to the workspace and stay under it, as actions/checkout's path"
      exit 2
      ;;
  esac
  args+=(--repo "${GITHUB_WORKSPACE:?}/$INPUT_PATH")
fi
if [ -n "${INPUT_CONFIG:-}" ]; then args+=(--config "$INPUT_CONFIG"); fi
case "${INPUT_FORMAT:-text}" in
  text | json) args+=(--format "${INPUT_FORMAT:-text}") ;;
  md | html)
    if [ "$INPUT_COMMAND" != evidence ]; then
      echo "::error title=rotor::input format md or html is for evidence only"
      exit 2
    fi
    args+=(--format "$INPUT_FORMAT")
    ;;
  *) echo "::error title=rotor::input format must be text or json (evidence: md, json or html)"; exit 2 ;;
esac
if [ "$INPUT_COMMAND" = rollback ]; then
  if [ -n "${INPUT_ROTATION_ID:-}" ]; then args+=(--rotation-id "$INPUT_ROTATION_ID"); fi
  if [ -n "${INPUT_REASON:-}" ]; then args+=(--reason "$INPUT_REASON"); fi
  # Split on spaces, commas and new lines only; no word is ever glob-expanded.
  IFS=$' \t\n,' read -r -d '' -a refs <<<"${INPUT_REFS:-}" || true
  for ref in "${refs[@]}"; do args+=(--ref "$ref"); done
elif [ "$INPUT_COMMAND" = countersign ]; then
  if [ -n "${INPUT_ROTATION_ID:-}" ]; then args+=(--rotation-id "$INPUT_ROTATION_ID"); fi
  if [ -n "${INPUT_REASON:-}" ]; then args+=(--reason "$INPUT_REASON"); fi
fi
if [ "$INPUT_COMMAND" != rollback ] && [ -n "${INPUT_REFS:-}" ]; then
  echo "::error title=rotor::refs applies to rollback only"
  exit 2
fi
case "${INPUT_FORCE:-false}" in
  true)
    if [ "$INPUT_COMMAND" != rollback ]; then
      echo "::error title=rotor::force applies to rollback only"
      exit 2
    fi
    args+=(--force)
    ;;
  false | "") ;;
  *) echo "::error title=rotor::input force must be true or false"; exit 2 ;;
esac
case "$INPUT_COMMAND" in
  verify | evidence)
    if [ -n "${INPUT_SINCE:-}" ]; then args+=(--since "$INPUT_SINCE"); fi
    ;;
  *)
    if [ -n "${INPUT_SINCE:-}" ]; then
      echo "::error title=rotor::since applies to verify and evidence only"
      exit 2
    fi
    ;;
esac
if [ -n "${INPUT_UNTIL:-}${INPUT_OUT:-}" ] && [ "$INPUT_COMMAND" != evidence ]; then
  echo "::error title=rotor::until and out apply to evidence only"
  exit 2
fi
if [ -n "${INPUT_UNTIL:-}" ]; then args+=(--until "$INPUT_UNTIL"); fi
if [ -n "${INPUT_OUT:-}" ]; then args+=(--out "$INPUT_OUT"); fi
case "${INPUT_OFFLINE:-false}" in
  true)
    if [ "$INPUT_COMMAND" != verify ]; then
      echo "::error title=rotor::offline applies to verify only"
      exit 2
    fi
    args+=(--offline)
    ;;
  false | "") ;;
  *) echo "::error title=rotor::input offline must be true or false"; exit 2 ;;
esac
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
