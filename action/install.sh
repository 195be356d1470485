#!/usr/bin/env bash
# Installs rotor for the runner (action.yml, first step): the release binary for this version
# and platform when dist/checksums.txt lists it, verified against that checksum; otherwise a
# build from source with cargo. Writes the binary's path to the step output `bin`.
#
# With --export (install/action.yml), the path is also exported as ROTOR_BIN for the job's
# later steps, so that the main action installs nothing again.
set -euo pipefail
root="${ROTOR_ROOT:-${GITHUB_ACTION_PATH:?run as a step of action.yml}}"
out="${GITHUB_OUTPUT:?}"
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$root/Cargo.toml" | head -n 1)
case "${RUNNER_OS:-}-${RUNNER_ARCH:-}" in
  Linux-X64) target=x86_64-unknown-linux-musl ;;
  Linux-ARM64) target=aarch64-unknown-linux-musl ;;
  macOS-ARM64) target=aarch64-apple-darwin ;;
  *) target="" ;;
esac
dest="${RUNNER_TEMP:-${TMPDIR:-/tmp}}/rotor-$version"
mkdir -p "$dest"

asset="rotor-v$version-$target.tar.gz"
expected=""
if [ -n "$target" ]; then
  expected=$(awk -v a="$asset" '$1 !~ /^#/ && $2 == a { print $1 }' "$root/dist/checksums.txt")
fi

sha256() {
  if command -v sha256sum >/dev/null; then sha256sum "$1" | cut -d' ' -f1; else shasum -a 256 "$1" | cut -d' ' -f1; fi
}

if [ -n "$expected" ]; then
  base="${ROTOR_RELEASE_BASE_URL:-${GITHUB_SERVER_URL:-https://github.com}/${GITHUB_ACTION_REPOSITORY:?}/releases/download}"
  echo "rotor: downloading $asset"
  # https only (file: for the action's own tests); no redirect to anything else.
  curl --fail --location --silent --show-error --retry 3 --proto '=https,file' \
    --proto-redir '=https' --output "$dest/$asset" "$base/v$version/$asset"
  actual=$(sha256 "$dest/$asset")
  if [ "$actual" != "$expected" ]; then
    rm -f "$dest/$asset"
    echo "::error title=rotor::checksum mismatch for $asset: dist/checksums.txt says $expected, the download is $actual; refusing to run it"
    exit 1
  fi
  tar -xzf "$dest/$asset" -C "$dest" rotor
  echo "rotor: $asset verified (sha256 $actual)"
else
  echo "rotor: no release asset for $version on ${RUNNER_OS:-?}/${RUNNER_ARCH:-?} in dist/checksums.txt; building from source"
  cargo build --release --locked --quiet --bin rotor \
    --manifest-path "$root/Cargo.toml" --target-dir "$dest/target"
  cp "$dest/target/release/rotor" "$dest/rotor"
fi
chmod +x "$dest/rotor"
echo "bin=$dest/rotor" >>"$out"
if [ "${1:-}" = "--export" ]; then
  echo "ROTOR_BIN=$dest/rotor" >>"${GITHUB_ENV:?}"
fi
