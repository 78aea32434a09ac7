#!/usr/bin/env bash
# The script the GitHub Action (action.yml) and the GitLab template (ci/gitlab-ci.yml) run:
# mcp-harness certify with every CI report written to one directory, the Markdown summary
# added to $GITHUB_STEP_SUMMARY when there is one, and certify's exit status as its own
# (0 certified, 1 findings, 2 the harness could not do its job).
#
# Settings (environment):
#   MCP_HARNESS             the binary (default: mcp-harness on PATH)
#   MCP_HARNESS_CONFIG      a project file (default: mcp-harness.toml in the working
#                           directory, when there is one; else the flags in MCP_HARNESS_ARGS)
#   MCP_HARNESS_BASELINE    a baseline file
#   MCP_HARNESS_ARGS        more certify arguments, split on blanks (quotes work, nothing
#                           in them is run)
#   MCP_HARNESS_OUTPUT_DIR  where the reports go (default: mcp-harness-reports)
# Reports: {target}.sarif, {target}.junit.xml, {target}.md, {target}.json and {target}.html per target
# ("target" without a project file); the human report goes to stdout.
set -uo pipefail

harness=${MCP_HARNESS:-mcp-harness}
out=${MCP_HARNESS_OUTPUT_DIR:-mcp-harness-reports}
mkdir -p "$out" || exit 2

args=(certify
    --format sarif --output "$out/{target}.sarif"
    --format junit --output "$out/{target}.junit.xml"
    --format markdown --output "$out/{target}.md"
    --format json --output "$out/{target}.json"
    --format html --output "$out/{target}.html"
    --format human)
if [ -n "${MCP_HARNESS_CONFIG:-}" ]; then
    args+=(--config "$MCP_HARNESS_CONFIG")
fi
if [ -n "${MCP_HARNESS_BASELINE:-}" ]; then
    args+=(--baseline "$MCP_HARNESS_BASELINE")
fi
if [ -n "${MCP_HARNESS_ARGS:-}" ]; then
    # Split on blanks with quotes honoured (xargs), never run through a shell.
    mapfile -d '' extra < <(printf '%s' "$MCP_HARNESS_ARGS" | xargs printf '%s\0') || exit 2
    args+=("${extra[@]}")
fi

"$harness" "${args[@]}"
status=$?

if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
    for summary in "$out"/*.md; do
        [ -f "$summary" ] && { cat "$summary"; echo; } >> "$GITHUB_STEP_SUMMARY"
    done
fi
if [ -n "${GITHUB_OUTPUT:-}" ]; then
    echo "status=$status" >> "$GITHUB_OUTPUT"
fi
exit "$status"
