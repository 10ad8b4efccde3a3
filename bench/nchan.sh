# The nginx configuration around Nchan, shared by compare.sh (one nginx) and
# cluster.sh (several, on one Redis). Sourced; the caller sets NOFILE.

NCHAN_MODULE=/usr/lib/nginx/modules/ngx_nchan_module.so

# nchan_config DIR HTTP: writes DIR/nginx.conf, with Nchan loaded, every
# file nginx writes kept inside DIR, and HTTP (server blocks, and any other
# http-level lines) at the end of its http block.
nchan_config() {
  local dir=$1 http=$2 user
  mkdir -p "$dir/tmp"
  user=$(id -un)
  # `user` only matters when the master runs as root; as anyone else
  # nginx keeps the current user and ignores it with a notice.
  cat > "$dir/nginx.conf" <<CONF
load_module $NCHAN_MODULE;
user $user;
worker_processes $(nproc);
worker_rlimit_nofile $NOFILE;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events {
  worker_connections $NOFILE;
  multi_accept on;
}
http {
  access_log off;
  client_body_temp_path $dir/tmp/body;
  proxy_temp_path $dir/tmp/proxy;
  fastcgi_temp_path $dir/tmp/fastcgi;
  uwsgi_temp_path $dir/tmp/uwsgi;
  scgi_temp_path $dir/tmp/scgi;
  # Room for ten thousand channels and their buffered messages.
  nchan_max_reserved_memory 512M;
  nchan_subscriber_timeout 0;
$http
}
CONF
}
