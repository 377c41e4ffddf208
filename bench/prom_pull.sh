#!/usr/bin/env bash
# Pull speed and memory against a local Prometheus: 1,000 series x 365 days x 1 h
# (8.76 M points), compared with fetching the same chunked requests one after another with
# curl. Needs prometheus, promtool, curl and python3; writes only under a temporary folder.
#   bash bench/prom_pull.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin="$here/../target/release/headroom"
[ -x "$bin" ] || (cd "$here/.." && cargo build --release)
work=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$work"' EXIT
cd "$work"
python3 "$here/prom_fleet.py" 1000
promtool tsdb create-blocks-from openmetrics --max-block-duration=8760h data.om tsdb >/dev/null
echo "scrape_configs: []" > p.yml
prometheus --config.file=p.yml --storage.tsdb.path=tsdb --storage.tsdb.retention.time=5y \
  --web.listen-address=127.0.0.1:19200 >/dev/null 2>&1 &
pid=$!
until curl -sf 127.0.0.1:19200/-/ready >/dev/null; do sleep 0.5; done
cat > pull.toml <<'TOML'
[defaults]
aggregate = "last"
[sources.p]
kind = "prometheus"
url = "http://127.0.0.1:19200"
max_points_per_request = 1000
concurrency = 4
timeout = "120s"
[[resources]]
source = "p"
query = 'perf_ratio'
name = "{instance}"
TOML
for i in 1 2 3; do /usr/bin/time -f "curl, sequential chunks: %e s" bash "$here/prom_curl.sh"; done
for i in 1 2 3; do
  rm -f snap.parquet
  /usr/bin/time -f "headroom pull: %e s wall, %M KB peak RSS" "$bin" pull --config pull.toml --out snap.parquet --as-of 2026-11-01T00:00:00Z 2>&1 | grep -v '^note'
done
