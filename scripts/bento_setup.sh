#!/bin/sh
# Runs while the bento image is built: a `sciner` command for the retrainer and probes.
set -eu
cat > /usr/local/bin/sciner <<'SH'
#!/bin/sh
cd /home/bentoml/bento/src && exec python -m training.cli "$@"
SH
chmod 0755 /usr/local/bin/sciner
mkdir -p /var/lib/sciner && chown 1034:1034 /var/lib/sciner 2>/dev/null || true
