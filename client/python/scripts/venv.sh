# Sourced by generate.sh and test.sh: makes sure .venv exists and has this
# package installed (editable) with the given extras. Idempotent: pip runs
# only when the venv is new, or pyproject.toml or the extras changed.
# Usage: ensure_venv EXTRAS   (e.g. ensure_venv test)
ensure_venv() {
  local extras=$1
  if [ ! -x .venv/bin/python ]; then
    local python=${PYTHON:-python3}
    if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
      echo "$python is missing or older than Python 3.10: set PYTHON=/path/to/python3.10+" >&2
      return 1
    fi
    if ! "$python" -m venv .venv; then
      rm -rf .venv
      echo "could not create .venv with $python (on Debian/Ubuntu: apt-get install python3-venv)" >&2
      return 1
    fi
  fi
  local stamp=.venv/.fathom-installed
  local want
  want="$extras $(cksum < pyproject.toml)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[$extras]"
    printf '%s' "$want" > "$stamp"
  fi
}
