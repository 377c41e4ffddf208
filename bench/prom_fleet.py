#!/usr/bin/env python3
# Writes data.om: N synthetic saturation ratios (perf_ratio{instance}), a year hourly, OpenMetrics.
import math, random, sys
END=1793491200; HOURS=8760; N=int(sys.argv[1])
random.seed(1)
with open('data.om','w') as f:
    for k in range(N):
        base=0.2+0.5*random.random(); g=0.3*random.random()/HOURS; a=0.1*random.random()
        lines=[]
        for i in range(HOURS):
            v=base+g*i+a*math.sin((i%24)/24*2*math.pi)
            lines.append(f'perf_ratio{{instance="i{k:04d}"}} {v:.5f} {END-(HOURS-1-i)*3600}\n')
        f.write(''.join(lines))
    f.write('# EOF\n')
