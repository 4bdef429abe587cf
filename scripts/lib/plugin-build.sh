# Shared by the build scripts of plugins in other languages
# (build-python-plugin, build-js-plugin; source it, don't run it).

# install_toolchain DIR PIN INSTALL_COMMAND... : makes sure the toolchain in
# DIR was installed from PIN (a lock or requirements file): when DIR's copy
# of PIN differs, DIR is removed and INSTALL_COMMAND run to fill it again,
# one install at a time when builds run in parallel.
install_toolchain() {
  local dir=$1 pin=$2
  shift 2
  mkdir -p "$(dirname "$dir")"
  exec 9> "$dir.lock"
  flock 9
  if ! cmp -s "$pin" "$dir/$(basename "$pin")" 2> /dev/null; then
    rm -rf "$dir" && mkdir -p "$dir"
    "$@"
    cp "$pin" "$dir/"
  fi
  flock -u 9
}

# up_to_date OUT SOURCE... : whether OUT exists and nothing under the
# SOURCEs (Python's byte-code caches aside) is newer.
up_to_date() {
  local out=$1
  shift
  [ -f "$out" ] && [ -z "$(find "$@" -name __pycache__ -prune -o -newer "$out" -print -quit)" ]
}
