#!/bin/bash
# Runs inside the build container as uid 1000: Heroku's buildpack API (detect, compile, release).
# Exit 10: nothing detected; 11: compile failed; 12: release failed. Results go to /tmp/shipway.
set -uo pipefail
exec 2>&1
BUILD_DIR=/app CACHE_DIR=/tmp/cache ENV_DIR=/tmp/env RESULT=/tmp/shipway
mkdir -p "$CACHE_DIR" "$ENV_DIR" "$RESULT"
cd "$BUILD_DIR" || exit 1
selected="" name=""
for bp in /tmp/buildpacks/*/; do
  bp=${bp%/}
  if detected=$("$bp/bin/detect" "$BUILD_DIR" </dev/null); then
    selected=$bp name=$(printf '%s\n' "$detected" | head -n1)
    break
  fi
done
# the server says why (no language / incompatible buildpack) in the push's one error line
[ -n "$selected" ] || exit 10
printf '%s\n' "${name:-Custom}" > "$RESULT/name"
echo "-----> ${name:-Custom} app detected"
"$selected/bin/compile" "$BUILD_DIR" "$CACHE_DIR" "$ENV_DIR" </dev/null || exit 11
"$selected/bin/release" "$BUILD_DIR" > "$RESULT/release.yml" </dev/null || exit 12
