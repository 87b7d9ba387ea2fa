#!/usr/bin/env bash
# The README's first command: install what is missing, build, and put l4lb in
# front of three local nginx backends (127.0.0.2-4), then show 20 clients with
# different source addresses spread across them. Interactive: l4lb keeps running
# until Ctrl-C so you can try it yourself.
set -euo pipefail
cd "$(dirname "$0")/.."

LISTEN_PORT=${L4LB_DEMO_PORT:-9000}
BACKEND_PORT=${L4LB_DEMO_BACKEND_PORT:-18080}

tools/setup.sh
echo "demo: building //l4lb:l4lb"
bazel build -c opt //l4lb:l4lb 2>&1 | grep -E '^(ERROR|FAIL)' || true
BIN=$(bazel info -c opt bazel-bin 2>/dev/null)/l4lb/l4lb
[[ -x "$BIN" ]] || { echo "demo: build failed; run: bazel build //l4lb:l4lb" >&2; exit 1; }

dir=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT INT TERM

# Three nginx backends, each answering with its own name.
for n in 2 3 4; do
  mkdir -p "$dir/b$n/www"
  echo "hello from backend 127.0.0.$n" >"$dir/b$n/www/index.html"
  cat >"$dir/b$n/nginx.conf" <<CONF
daemon off;
master_process off;
worker_processes 1;
user root;
pid $dir/b$n/nginx.pid;
error_log $dir/b$n/error.log;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path $dir/b$n; proxy_temp_path $dir/b$n;
  fastcgi_temp_path $dir/b$n; uwsgi_temp_path $dir/b$n; scgi_temp_path $dir/b$n;
  server { listen 127.0.0.$n:$BACKEND_PORT; root $dir/b$n/www; }
}
CONF
  /usr/sbin/nginx -c "$dir/b$n/nginx.conf" -e "$dir/b$n/error.log" &
  pids+=($!)
done

"$BIN" --listen=127.0.0.1:$LISTEN_PORT \
  --backends=127.0.0.2:$BACKEND_PORT,127.0.0.3:$BACKEND_PORT,127.0.0.4:$BACKEND_PORT \
  --ready_file="$dir/ready" 2>"$dir/l4lb.log" &
pids+=($!)
for _ in $(seq 100); do [[ -s "$dir/ready" ]] && break; sleep 0.1; done
if [[ ! -s "$dir/ready" ]]; then
  echo "demo: l4lb did not start:" >&2
  cat "$dir/l4lb.log" >&2
  exit 1
fi

echo
echo "l4lb listens on 127.0.0.1:$LISTEN_PORT in front of 127.0.0.{2,3,4}:$BACKEND_PORT"
echo "20 clients, each from its own source address (curl --interface):"
declare -A hits
for c in $(seq 10 29); do
  answer=$(curl -s --max-time 5 --interface 127.0.0.$c http://127.0.0.1:$LISTEN_PORT/ || echo "FAILED")
  printf '  client 127.0.0.%-3s -> %s\n' "$c" "$answer"
  hits[$answer]=$((${hits[$answer]:-0} + 1))
done
echo "spread:"
for k in "${!hits[@]}"; do printf '  %2d x %s\n' "${hits[$k]}" "$k"; done
echo "the same client always reaches the same backend (Maglev on the source address):"
for _ in 1 2 3; do curl -s --interface 127.0.0.10 http://127.0.0.1:$LISTEN_PORT/; done
echo
echo "access log (one line per connection):"
grep ' conn ' "$dir/l4lb.log" | tail -3 | sed 's/^/  /'

if [[ -t 0 ]]; then
  echo
  echo "l4lb keeps running; try:  curl --interface 127.0.0.42 http://127.0.0.1:$LISTEN_PORT/"
  echo "                    or:   echo hi | nc -s 127.0.0.43 127.0.0.1 $LISTEN_PORT"
  echo "log: $dir/l4lb.log.  Ctrl-C stops everything."
  wait "${pids[-1]}"
fi
