#!/usr/bin/env python3
"""The runtime's core module graph: which module of runtime/src uses which (`crate::` paths and
the root re-exports, outside comments and unit tests), and the pairs of modules in a cycle.
   python3 scripts/module-graph.py          # the working tree
   python3 scripts/module-graph.py 81b8211  # a commit
"""
import os
import re
import subprocess
import sys

os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
rev = sys.argv[1] if len(sys.argv) > 1 else 'WORK'
core=['ids','continue_trace','builder','classify','context','continuation','executors','tokio_runtime','flush','future','pending','private','propagation','spawn','monitor','rayon_handle','carried']
def read(path):
    if rev=='WORK':
        p='runtime/src/'+path
        return open(p).read() if os.path.exists(p) else None
    r=subprocess.run(['git','show',f'{rev}:runtime/src/{path}'],capture_output=True,text=True)
    return r.stdout if r.returncode==0 else None
edges={}
for m in core:
    src=read(m+'.rs') or read(m+'/mod.rs')
    if src is None: continue
    # include submodules of propagation
    if m=='propagation':
        for sub in ['inherit','baggage','sentry_trace','traceparent','tracestate','list','serde']:
            t=read(f'propagation/{sub}.rs')
            if t: src+=t
    src='\n'.join(l for l in src.splitlines() if not l.strip().startswith('//'))
    # unit tests are not the module graph
    src=src.split('#[cfg(test)]\nmod tests')[0]
    deps=set(re.findall(r'crate::([a-z_]+)',src))
    roots={'Builder':'builder','TraceContext':'context','Continued':'future','ContinuedStream':'future','RayonHandle':'rayon_handle','Spawn':'spawn','SpawnFuture':'spawn','ContinueTrace':'future','Verdict':'classify'}
    for name,mod in roots.items():
        if re.search(r'crate::(\{[^}]*\b'+name+r'\b|'+name+r'\b)',src): deps.add(mod)
    deps={d if d!='__private' else 'private' for d in deps}
    edges[m]=sorted(d for d in deps if d in core and d!=m)
for m,d in edges.items(): print(f'{m} -> {", ".join(d)}')
# cycles among core
import itertools
def reach(a,b,seen=None):
    seen=seen or set()
    for n in edges.get(a,[]):
        if n==b: return True
        if n not in seen:
            seen.add(n)
            if reach(n,b,seen): return True
    return False
cyc=sorted({tuple(sorted((a,b))) for a in edges for b in edges[a] if reach(b,a)})
print('two-way or circular pairs:', cyc)
