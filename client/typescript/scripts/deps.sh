# Sourced by generate.sh and test.sh: installs node_modules exactly as
# package-lock.json pins them (npm ci). Idempotent: npm runs only when
# node_modules is missing or the lockfile changed since the last install.
ensure_deps() {
  local stamp=node_modules/.fathom-installed
  local want
  want=$(cksum < package-lock.json)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    npm ci --no-audit --no-fund
    printf '%s' "$want" > "$stamp"
  fi
}
