#!/usr/bin/env bash
# The same chunked query_range requests headroom makes, one after another (the baseline).
end=1793491200; start=$((end-8760*3600)); step=3600; per=1000
a=$start
while [ $a -le $end ]; do
  b=$((a+(per-1)*step)); [ $b -gt $end ] && b=$end
  curl -s -G -o /dev/null "http://127.0.0.1:19200/api/v1/query_range" --data-urlencode "query=perf_ratio" --data-urlencode "start=$a" --data-urlencode "end=$b" --data-urlencode "step=3600s"
  a=$((b+step))
done
