#!/usr/bin/env bash
# Run `vgate scan` for the GitHub Action (action.yml) and publish its outputs.
#
# Inputs come from the environment (the composite step sets them from the action inputs):
#   VGATE_PATHS         whitespace-separated paths to scan (globs are expanded). Empty: the files
#                       that files.include of the discovered .vgate.yaml names; with none, the
#                       step fails and says how to set `paths`                      default: empty
#   VGATE_POLICY        policy name or file; empty: the discovered config         default: empty
#   VGATE_EXCLUDE       whitespace-separated gitignore-style globs not to scan    default: none
#   VGATE_DIFF_BASE     scan only files changed against this git ref              default: none
#   VGATE_FAIL_ON       block | warn | never                                      default: block
#   VGATE_ANNOTATIONS   true: findings as workflow annotations (--format github)  default: true
#   VGATE_SARIF         true: also write a SARIF log to VGATE_SARIF_FILE          default: false
#   VGATE_SARIF_FILE    where the SARIF log goes                                  default: vgate.sarif
#   VGATE_REPORT_FORMAT another report to write: json, jsonl, sarif, junit, gitlab  default: none
#   VGATE_REPORT_FILE   where it goes                             default: vgate-report.<format>
#   VGATE_BASELINE      previous report whose findings are waived                 default: none
#   VGATE_EXTRA_ARGS    more `vgate scan` arguments, whitespace-separated         default: none
#   VGATE_CMD           command that runs vgate                                   default: vgate
#   VGATE_PYTHON        python with vgate installed, for reading counts back      default: python3
#   VGATE_DEFER_EXIT    true: exit 0 and leave the scan's code in the exit-code output (the action
#                       uploads SARIF first and fails the job in a later step)    default: false
#   GITHUB_OUTPUT       file to append outputs to (report, sarif-file, sarif-ready, scanned,
#                       blocked, warned, suppressed, errors, exit-code); stdout when unset
#   GITHUB_STEP_SUMMARY optional; a one-line summary is appended when set
#
# The exit code is the scan's own (0 ok, 1 findings at/above fail-on, 2 input or usage error).
# All reports are written in one scan (`--report FORMAT=PATH`, each written whole or not at all).
# The SARIF log is never left half-written: when the scan stops before writing a valid one, a
# SARIF log with a failed invocation is written instead, and sarif-ready says it can be uploaded.
set -uo pipefail

paths="${VGATE_PATHS:-}"
policy="${VGATE_POLICY:-}"
diff_base="${VGATE_DIFF_BASE:-}"
fail_on="${VGATE_FAIL_ON:-block}"
annotations="${VGATE_ANNOTATIONS:-true}"
sarif="${VGATE_SARIF:-false}"
sarif_file="${VGATE_SARIF_FILE:-vgate.sarif}"
report_format="${VGATE_REPORT_FORMAT:-}"
report_file="${VGATE_REPORT_FILE:-}"
baseline="${VGATE_BASELINE:-}"
python="${VGATE_PYTHON:-python3}"
read -r -a vgate_cmd <<<"${VGATE_CMD:-vgate}"
# shellcheck disable=SC2206 # word-split and glob-expand on purpose
path_args=($paths)
read -r -a excludes <<<"${VGATE_EXCLUDE:-}"
read -r -a extra_args <<<"${VGATE_EXTRA_ARGS:-}"

output() {
  if [[ -n "${GITHUB_OUTPUT:-}" ]]; then
    echo "$1=$2" >>"$GITHUB_OUTPUT"
  else
    echo "$1=$2"
  fi
}

# A workflow-command message: %, CR and LF escaped as the syntax requires.
annotate_error() {
  local message="${1//'%'/%25}"
  message="${message//$'\r'/%0D}"
  echo "::error title=vgate::${message//$'\n'/%0A}"
}

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
summary="$work/summary.json"

args=(scan "${path_args[@]}" --fail-on "$fail_on" --report "json=$summary")
[[ -n "$policy" ]] && args+=(--policy "$policy")
for glob in "${excludes[@]}"; do
  args+=(--exclude "$glob")
done
[[ -n "$diff_base" ]] && args+=(--diff-base "$diff_base")
if [[ "$annotations" == "true" ]]; then
  args+=(--format github)
else
  args+=(--format table)
fi
if [[ "$sarif" == "true" ]]; then
  mkdir -p "$(dirname "$sarif_file")"
  rm -f "$sarif_file"
  args+=(--report "sarif=$sarif_file")
fi
if [[ -n "$report_format" ]]; then
  report_file="${report_file:-vgate-report.$report_format}"
  mkdir -p "$(dirname "$report_file")"
  rm -f "$report_file"
  args+=(--report "$report_format=$report_file")
fi
[[ -n "$baseline" ]] && args+=(--baseline "$baseline")
args+=("${extra_args[@]}")

echo "+ ${vgate_cmd[*]} ${args[*]}" >&2
"${vgate_cmd[@]}" "${args[@]}" 2>"$work/stderr"
rc=$?
errors="$(cat "$work/stderr")"
cat "$work/stderr" >&2

if [[ $rc -eq 2 && -z "$paths" ]] && grep -q "nothing to scan" <<<"$errors"; then
  annotate_error "nothing to scan: set the action's paths input (e.g. 'paths: prompts/') or list \
your prompt files under files.include in .vgate.yaml (see vgate init)"
elif [[ ! -s "$summary" ]]; then
  annotate_error "scan exited with $rc before writing its reports: $(tail -n 1 <<<"$errors")"
fi
[[ $rc -eq 0 && ! -s "$summary" ]] && rc=2

sarif_ready=false
if [[ "$sarif" == "true" ]]; then
  if ! "$python" -m vgate.integrations.github_action counts "$sarif_file" >/dev/null 2>&1; then
    "$python" -m vgate.integrations.github_action failed-sarif "$sarif_file" "$errors" \
      "${vgate_cmd[@]}" "${args[@]}" || rm -f "$sarif_file"
  fi
  [[ -s "$sarif_file" ]] && sarif_ready=true
fi

# Counts are read back from the JSON summary written in the same scan; empty when unknown.
declare -A count=()
if [[ -s "$summary" ]]; then
  while IFS== read -r key value; do
    count[$key]="$value"
  done < <("$python" -m vgate.integrations.github_action counts "$summary")
fi

output report "$([[ -n "$report_format" && -s "$report_file" ]] && echo "$report_file")"
output sarif-file "$([[ "$sarif_ready" == true ]] && echo "$sarif_file")"
output sarif-ready "$sarif_ready"
output exit-code "$rc"
for key in scanned blocked warned suppressed errors; do
  output "$key" "${count[$key]:-}"
done

if [[ -n "${GITHUB_STEP_SUMMARY:-}" && -n "${count[scanned]:-}" ]]; then
  {
    echo "### vgate"
    echo "Scanned ${count[scanned]} prompts: ${count[blocked]} blocked, ${count[warned]} warned," \
      "${count[suppressed]} suppressed, ${count[errors]} input errors" \
      "(fail-on: $fail_on, exit code $rc)."
  } >>"$GITHUB_STEP_SUMMARY"
fi

if [[ "${VGATE_DEFER_EXIT:-false}" == "true" ]]; then
  exit 0
fi
exit "$rc"
