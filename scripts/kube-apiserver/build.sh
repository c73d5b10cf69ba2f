#!/usr/bin/env bash
# Builds a real kube-apiserver (and the etcd it runs on) for the tests, from the Go module proxy,
# and caches both by version. Last lines of output: KUBE_APISERVER=<path> and ETCD=<path>.
#
#   scripts/kube-apiserver/build.sh            # cold: ~see README; cached: instant
#   KUBE_VERSION=v1.36.3 scripts/kube-apiserver/build.sh
#   scripts/kube-apiserver/build.sh --cached   # only report cached binaries; exit 3 if absent
#
# k8s.io/kubernetes cannot be built with `go install k8s.io/kubernetes/cmd/kube-apiserver@v1.X`:
# its go.mod requires the staging modules (k8s.io/api, apiserver, ...) at v0.0.0 and replaces
# them with ./staging paths, which only exist in the git tree. So we generate a wrapper module
# that requires k8s.io/kubernetes and replaces each staging module with its published v0.X.Y.
set -euo pipefail

KUBE_VERSION="${KUBE_VERSION:-v1.37.2}"
# etcd at the version k8s.io/kubernetes itself requires (go.etcd.io/etcd/server/v3 in its go.mod),
# unless overridden. Not Debian's etcd 3.4: this apiserver finds no RequestWatchProgress in it
# and refuses watch-list streams (see README).
ETCD_VERSION="${ETCD_VERSION:-}"
CACHE="${IPAMD_KUBE_CACHE:-/var/cache/ipamd-kube}"

out="$CACHE/$KUBE_VERSION"
apiserver="$out/kube-apiserver"
etcd="$out/etcd"

runs() { [ -x "$1" ] && "$1" --version >/dev/null 2>&1; }
report() { echo "KUBE_APISERVER=$apiserver"; echo "ETCD=$etcd"; }

if runs "$apiserver" && runs "$etcd"; then report; exit 0; fi
if [ "${1:-}" = "--cached" ]; then
  echo "build.sh: kube-apiserver $KUBE_VERSION is not in $out; run scripts/kube-apiserver/build.sh (make kube-apiserver)" >&2
  exit 3
fi

command -v go >/dev/null || { echo "build.sh: go is not installed" >&2; exit 1; }
mkdir -p "$out"
# Two test runs (or CI and a developer) must not build into the same directory at once.
exec 9>"$out/.lock"
flock 9
if runs "$apiserver" && runs "$etcd"; then report; exit 0; fi

export CGO_ENABLED=0 GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
started=$SECONDS

# The kubernetes go.mod: its go/godebug lines, the staging modules it requires at v0.0.0, and
# its etcd version. The staging modules are tagged v0.<minor>.<patch> for kubernetes v1.<minor>.<patch>.
if ! info=$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" 2>&1); then
  echo "build.sh: go mod download k8s.io/kubernetes@$KUBE_VERSION failed:" >&2; echo "$info" >&2; exit 1
fi
kube_mod=$(sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p' <<<"$info")
[ -f "$kube_mod" ] || { echo "build.sh: no go.mod for k8s.io/kubernetes@$KUBE_VERSION in: $info" >&2; exit 1; }
staging_version="v0.${KUBE_VERSION#v1.}"
staging=$(awk '/^[[:space:]]*k8s\.io\/[^[:space:]]+ v0\.0\.0$/ { print $1 }' "$kube_mod" | sort -u)
[ -n "$staging" ] || { echo "build.sh: no staging modules found in $kube_mod" >&2; exit 1; }
[ -n "$ETCD_VERSION" ] || ETCD_VERSION=$(awk '$1 == "go.etcd.io/etcd/server/v3" { print $2 }' "$kube_mod")
[ -n "$ETCD_VERSION" ] || { echo "build.sh: no go.etcd.io/etcd/server/v3 in $kube_mod; set ETCD_VERSION" >&2; exit 1; }

# Generated each run, so a version change never reuses a stale go.mod; the module cache and
# the build cache make the rerun cheap.
wrapper() { # dir go-lines tool requires... ; writes go.mod, lets tidy pick the rest
  local dir=$1 golines=$2 tool=$3; shift 3
  rm -rf "$dir"; mkdir -p "$dir"
  {
    echo "module ipamd.test/kube-build"
    echo
    echo "$golines"
    echo
    echo "tool $tool"
    echo
    for req in "$@"; do echo "require $req"; done
  } >"$dir/go.mod"
}

# kube-apiserver: the kubernetes go and godebug lines keep its runtime defaults.
kdir="$out/src/kube-apiserver"
wrapper "$kdir" "$(grep -E '^(go|godebug) ' "$kube_mod")" k8s.io/kubernetes/cmd/kube-apiserver "k8s.io/kubernetes $KUBE_VERSION"
{
  echo
  echo "replace ("
  for m in $staging; do echo "	$m => $m $staging_version"; done
  echo ")"
} >>"$kdir/go.mod"
(cd "$kdir" && go mod tidy)

# The version kube-apiserver reports (/version, --version), as kubernetes' hack/lib/version.sh sets it.
minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
pkgs="k8s.io/component-base/version k8s.io/client-go/pkg/version"
ldflags="-s -w"
for p in $pkgs; do
  ldflags+=" -X $p.gitVersion=$KUBE_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
  ldflags+=" -X $p.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
done
if ! runs "$apiserver"; then
  echo "build.sh: building kube-apiserver $KUBE_VERSION (cold: several minutes)" >&2
  (cd "$kdir" && nice -n 19 go build -trimpath -ldflags "$ldflags" -o "$apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver)
  mv -f "$apiserver.tmp" "$apiserver"
fi

# etcd: a wrapper of its own (its server module's root package is the etcd binary), so that its
# dependencies stay at etcd's versions instead of being raised to kubernetes' by one module graph.
edir="$out/src/etcd"
wrapper "$edir" "$(grep -E '^go ' "$kube_mod")" go.etcd.io/etcd/server/v3 "go.etcd.io/etcd/server/v3 $ETCD_VERSION"
(cd "$edir" && go mod tidy)
if ! runs "$etcd"; then
  echo "build.sh: building etcd $ETCD_VERSION" >&2
  (cd "$edir" && nice -n 19 go build -trimpath -ldflags "-s -w" -o "$etcd.tmp" go.etcd.io/etcd/server/v3)
  mv -f "$etcd.tmp" "$etcd"
fi

echo "build.sh: done in $((SECONDS - started)) s" >&2
report
