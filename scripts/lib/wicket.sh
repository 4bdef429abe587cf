# Shared by the scripts that start `wicket serve` (source it, don't run it).

# start_wicket OUT_DIR ARGS... : starts `target/release/wicket serve ARGS`
# with stdout in OUT_DIR/stdout and stderr in OUT_DIR/stderr, and waits for
# its `listening on` line. Sets `server` (the pid), `base` (https://ADDR) and
# `ops` (http://ADDR). Fails, showing stderr, if wicket exits first or has
# not listened within WICKET_START_DEADLINE seconds (default 120).
start_wicket() {
  local out=$1
  shift
  start_listening "$out" target/release/wicket serve "$@" || return 1
  ops=$(sed -n 's/^ops on \([^ ]*\).*/\1/p' "$out/stdout")
}

# start_listening OUT_DIR COMMAND... : starts COMMAND, which prints
# `listening on https://ADDR` when it serves, as start_wicket does (the
# native baseline server uses it too). Sets `server` and `base`.
start_listening() {
  local out=$1
  shift
  : > "$out/stdout"
  "$@" > "$out/stdout" 2> "$out/stderr" &
  server=$!
  local deadline=$((SECONDS + ${WICKET_START_DEADLINE:-120}))
  until grep -q '^listening on ' "$out/stdout"; do
    if ! kill -0 "$server" 2> /dev/null; then
      echo "$1 exited before listening:" >&2
      cat "$out/stderr" >&2
      return 1
    fi
    if ((SECONDS >= deadline)); then
      echo "$1 did not listen within ${WICKET_START_DEADLINE:-120} s:" >&2
      cat "$out/stderr" >&2
      kill "$server" 2> /dev/null || true
      return 1
    fi
    sleep 0.01
  done
  base=$(sed -n 's/^listening on //p' "$out/stdout")
}
