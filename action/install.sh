#!/usr/bin/env bash
# Installs rotor for the runner (action.yml, first step): the release binary for this version
# and platform when dist/checksums.txt lists it, verified against that checksum; otherwise a
# build from source with cargo, in a directory and an environment of its own (never the
# checked-out workspace's). Writes the binary's path to the step output `bin`.
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
  # cargo takes its configuration from the working directory and every directory above it
  # (.cargo/config.toml: rustc-wrapper, linker, runner, build.rustflags), rustup takes the
  # toolchain from rust-toolchain.toml there (a `path =` toolchain is any program), and both
  # take more from the environment. The step's working directory is the checked-out workspace,
  # which a pull request writes, and a job that installs rotor holds credentials (with
  # `id-token: write`, every step can mint the cloud role's token): so the build runs in a fresh
  # directory of its own, with a toolchain named here and an environment made here, and nothing
  # of the workspace's is consulted.
  root=$(cd -P "$root" && pwd)
  toolchain="${ROTOR_RUST_TOOLCHAIN:-stable}"
  # RUSTUP_TOOLCHAIN also takes a directory, which would run whatever lies there: a name only.
  if ! [[ "$toolchain" =~ ^[A-Za-z0-9][A-Za-z0-9._+-]*$ ]]; then
    echo "::error title=rotor::ROTOR_RUST_TOOLCHAIN must name a toolchain (stable, 1.88, nightly-2026-01-01), not a path"
    exit 1
  fi
  work=$(mktemp -d "${RUNNER_TEMP:-${TMPDIR:-/tmp}}/rotor-build.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  work=$(cd -P "$work" && pwd)
  if [ -n "${GITHUB_WORKSPACE:-}" ] && [ -d "$GITHUB_WORKSPACE" ]; then
    workspace=$(cd -P "$GITHUB_WORKSPACE" && pwd)
    case "$work/" in
      "$workspace"/*)
        echo "::error title=rotor::the build directory $work lies inside the workspace $workspace, whose .cargo/config.toml and rust-toolchain.toml a pull request controls; set RUNNER_TEMP (or TMPDIR) outside it"
        exit 1
        ;;
    esac
    # `uses: ./` (rotor's own CI) or a copy of rotor kept in the repository: the sources and
    # this script are then the checked-out commit's own, so a pull request's code is what runs
    # and nothing here can stop it. Such a job must hold no credential.
    case "$root/" in
      "$workspace"/*)
        echo "::notice title=rotor::rotor is built from the checked-out workspace ($root), that is, from the code of the commit being run; give this job no credentials"
        ;;
    esac
  fi
  # What the fresh directory cannot shed: configuration in a directory above it. Nothing the
  # workspace controls (it was refused above), but an earlier step could have written it.
  dir="$work"
  while dir=$(dirname "$dir"); do
    for f in "$dir/.cargo/config.toml" "$dir/.cargo/config"; do
      if [ -e "$f" ]; then
        echo "::warning title=rotor::the source build reads $f (cargo's configuration in a directory above $work)"
      fi
    done
    [ "$dir" != / ] || break
  done
  mkdir "$work/cargo-home" "$work/tmp"
  # An allowlist, not a list of what to unset: besides cargo's own variables (RUSTC_WRAPPER,
  # RUSTC_WORKSPACE_WRAPPER, RUSTFLAGS, CARGO_ENCODED_RUSTFLAGS, CARGO_BUILD_*,
  # CARGO_TARGET_<triple>_LINKER/RUNNER, CARGO_REGISTRIES_*_CREDENTIAL_PROVIDER, ...), the
  # build scripts of rotor's dependencies honour CC, CFLAGS, AR, CMAKE, LIBCLANG_PATH and more,
  # any of which an earlier step could have put into $GITHUB_ENV; and the job's own tokens
  # (ACTIONS_ID_TOKEN_REQUEST_TOKEN mints the cloud role's OIDC token, ACTIONS_RUNTIME_TOKEN)
  # stay out of every build script. Kept: where the tools are (PATH, HOME, RUSTUP_HOME), and how
  # to reach the network (proxies, certificates, cargo's http and net settings), which cannot
  # change what is built: --locked checks every crate against the checksums in Cargo.lock.
  build_env=(
    "PATH=$PATH"
    "RUSTUP_TOOLCHAIN=$toolchain"
    "CARGO_HOME=$work/cargo-home"
    "TMPDIR=$work/tmp"
  )
  while IFS= read -r name; do
    case "$name" in
      HOME | RUSTUP_HOME | SSL_CERT_FILE | SSL_CERT_DIR | CARGO_HTTP_* | CARGO_NET_* | \
        HTTPS_PROXY | https_proxy | HTTP_PROXY | http_proxy | ALL_PROXY | all_proxy | \
        NO_PROXY | no_proxy)
        build_env+=("$name=${!name}")
        ;;
    esac
  done < <(compgen -e)
  (cd "$work" && env -i "${build_env[@]}" cargo build --release --locked --quiet --bin rotor \
    --manifest-path "$root/Cargo.toml" --target-dir "$work/target")
  cp "$work/target/release/rotor" "$dest/rotor"
fi
chmod +x "$dest/rotor"
echo "bin=$dest/rotor" >>"$out"
if [ "${1:-}" = "--export" ]; then
  echo "ROTOR_BIN=$dest/rotor" >>"${GITHUB_ENV:?}"
fi
