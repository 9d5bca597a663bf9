# tests/remote_lib.sh: a real nginx WebDAV server on loopback for the remote
# tests and benchmark (sourced).  start_nginx DIR USER PASSWORD starts nginx
# in the foreground (daemon off) in the background of the shell, with every
# path (pid, logs, temp files, document root DIR/www) under DIR, PUT/DELETE/
# MKCOL enabled, basic auth from an htpasswd file, on a free port of
# 127.0.0.1; it sets NGINX_PORT, NGINX_URL, NGINX_WWW and NGINX_PID and
# waits until the server answers.  stop_nginx stops it (call it from a trap).

have_nginx() { command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; }
nginx_bin() { command -v nginx 2>/dev/null || echo /usr/sbin/nginx; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# htpasswd line without apache2-utils when it is missing (openssl apr1 hash).
write_htpasswd() {
  if command -v htpasswd >/dev/null 2>&1; then htpasswd -bc "$1" "$2" "$3" 2>/dev/null
  else printf '%s:%s\n' "$2" "$(openssl passwd -apr1 "$3")" > "$1"; fi
}

start_nginx() {
  local dir=$1 user=$2 pass=$3 workers=${NGINX_WORKERS:-1}
  mkdir -p "$dir/www" "$dir/tmp" "$dir/logs"
  write_htpasswd "$dir/htpasswd" "$user" "$pass"
  NGINX_PORT=$(free_port)
  cat > "$dir/nginx.conf" <<CONF
daemon off;
user root;
worker_processes $workers;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 512; }
http {
  access_log $dir/logs/access.log;
  client_body_temp_path $dir/tmp/body;
  proxy_temp_path $dir/tmp/proxy;
  fastcgi_temp_path $dir/tmp/fastcgi;
  uwsgi_temp_path $dir/tmp/uwsgi;
  scgi_temp_path $dir/tmp/scgi;
  sendfile on;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    root $dir/www;
    location / {
      dav_methods PUT DELETE MKCOL;
      create_full_put_path on;
      client_max_body_size 0;
      client_body_buffer_size 1m;
      auth_basic "flab remote";
      auth_basic_user_file $dir/htpasswd;
    }
  }
}
CONF
  "$(nginx_bin)" -p "$dir" -e "$dir/logs/error.log" -c "$dir/nginx.conf" &
  NGINX_PID=$!
  NGINX_URL=http://127.0.0.1:$NGINX_PORT
  NGINX_WWW=$dir/www
  local i
  for i in $(seq 1 100); do
    curl -s -o /dev/null "$NGINX_URL/" && return 0
    kill -0 "$NGINX_PID" 2>/dev/null || break
    sleep 0.05
  done
  echo "nginx did not start:"; cat "$dir/logs/error.log"
  return 1
}

stop_nginx() {
  [ -n "${NGINX_PID:-}" ] || return 0
  kill "$NGINX_PID" 2>/dev/null
  wait "$NGINX_PID" 2>/dev/null
  NGINX_PID=
}

# every object under DIR/cas hashes to its name (xxhsum -H2 = flab's hash)
cas_consistent() {
  local f h
  for f in "$1"/cas/*; do
    [ -e "$f" ] || continue
    h=$(xxhsum -H2 "$f" | cut -d' ' -f1)
    [ "$h" = "$(basename "$f")" ] || { echo "bad object $f"; return 1; }
  done
}
