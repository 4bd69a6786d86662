#!/usr/bin/env bash
# Run `vgate scan` for the GitHub Action (action.yml) and publish its outputs.
#
# Inputs come from the environment (the composite step sets them from the action inputs):
#   VGATE_PATHS       whitespace-separated paths to scan (globs are expanded)   default: .
#   VGATE_POLICY      policy name or file                                       default: default
#   VGATE_FAIL_ON     block | warn | never                                      default: block
#   VGATE_FORMAT      sarif | json | jsonl | table                              default: sarif
#   VGATE_REPORT      report file to write                                      default: vgate.sarif
#   VGATE_BASELINE    previous report whose findings are waived                 default: none
#   VGATE_EXTRA_ARGS  more `vgate scan` arguments, whitespace-separated         default: none
#   VGATE_CMD         command that runs vgate                                   default: vgate
#   VGATE_PYTHON      python with vgate installed, for reading counts back      default: python3
#   GITHUB_OUTPUT     file to append outputs to (report, scanned, blocked, warned, suppressed,
#                     errors, exit-code); printed to stdout when unset
#   GITHUB_STEP_SUMMARY  optional; a one-line summary is appended when set
#
# The script exits with the scan's own exit code (0 ok, 1 findings at/above fail-on, 2 input or
# usage error), so the job fails as `fail-on` says. The report file exists whatever happened: when
# the scan stops before writing one, a SARIF log with a failed invocation is written instead, so
# an `upload-sarif` step with `if: always()` can still upload it.
set -uo pipefail

paths="${VGATE_PATHS:-.}"
policy="${VGATE_POLICY:-default}"
fail_on="${VGATE_FAIL_ON:-block}"
format="${VGATE_FORMAT:-sarif}"
report="${VGATE_REPORT:-vgate.sarif}"
baseline="${VGATE_BASELINE:-}"
python="${VGATE_PYTHON:-python3}"
read -r -a vgate_cmd <<<"${VGATE_CMD:-vgate}"
# shellcheck disable=SC2206 # word-split and glob-expand on purpose
path_args=($paths)
read -r -a extra_args <<<"${VGATE_EXTRA_ARGS:-}"

output() {
  if [[ -n "${GITHUB_OUTPUT:-}" ]]; then
    echo "$1=$2" >>"$GITHUB_OUTPUT"
  else
    echo "$1=$2"
  fi
}

args=(scan "${path_args[@]}" --policy "$policy" --fail-on "$fail_on" --format "$format"
  --output "$report")
if [[ -n "$baseline" ]]; then
  args+=(--baseline "$baseline")
fi
args+=("${extra_args[@]}")

mkdir -p "$(dirname "$report")"
rm -f "$report"
errlog="$(mktemp)"
trap 'rm -f "$errlog"' EXIT

echo "+ ${vgate_cmd[*]} ${args[*]}" >&2
"${vgate_cmd[@]}" "${args[@]}" 2>"$errlog"
rc=$?
cat "$errlog" >&2

if [[ ! -s "$report" ]]; then
  echo "::error title=vgate::scan exited with $rc before writing $report: $(tail -n 1 "$errlog")"
  if [[ "$format" == "sarif" ]]; then
    "$python" -m vgate.integrations.github_action failed-sarif "$report" "$(cat "$errlog")" \
      "${vgate_cmd[@]}" "${args[@]}" || true
  fi
  [[ $rc -eq 0 ]] && rc=2
fi

# Counts are read back from the report (not from the table format); empty when unknown.
declare -A count=()
if [[ -s "$report" && "$format" != "table" ]]; then
  while IFS== read -r key value; do
    count[$key]="$value"
  done < <("$python" -m vgate.integrations.github_action counts "$report")
fi

output report "$report"
output exit-code "$rc"
for key in scanned blocked warned suppressed errors; do
  output "$key" "${count[$key]:-}"
done

if [[ -n "${GITHUB_STEP_SUMMARY:-}" && -n "${count[scanned]:-}" ]]; then
  {
    echo "### vgate"
    echo "Scanned ${count[scanned]} prompts: ${count[blocked]} blocked, ${count[warned]} warned," \
      "${count[suppressed]} suppressed, ${count[errors]} input errors" \
      "(fail-on: $fail_on, exit code $rc). Report: \`$report\`"
  } >>"$GITHUB_STEP_SUMMARY"
fi

exit "$rc"
