#!/usr/bin/env python3
"""Fails when the library's modules import each other in a cycle.

Reads every module under src/ (the library; main.rs and the binary-only
src/cli are left out), collects the `crate::…` and `super::…` paths each one
uses outside its tests, maps them to the deepest module they name, and looks
for strongly connected components (Tarjan). A path into a module's own
ancestor (`super::Type` re-exported by the parent) is not an edge. Usage:
`scripts/check-module-cycles.py [src]`; exits 1 and prints each cycle's
edges when there is one.
"""
import os, re, sys
root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'src')
mods = {}
for dp, _, fs in os.walk(root):
    for f in fs:
        if not f.endswith('.rs'): continue
        p = os.path.join(dp, f)
        rel = os.path.relpath(p, root)[:-3].split(os.sep)
        if rel[-1] == 'mod': rel = rel[:-1]
        if rel[0] in ('lib', 'main', 'cli'): continue
        mods[tuple(rel)] = p
def strip(src):
    src = re.sub(r'//[^\n]*', '', src)
    return re.sub(r'#\[cfg\(test\)\]\s*mod tests\s*\{.*', '', src, flags=re.S)
def paths(src):
    # expand use trees roughly: take every path starting with crate:: or super::
    out = []
    for m in re.finditer(r'\b(crate|super)((?:::[A-Za-z_][A-Za-z0-9_]*)+|::\{)', src):
        start = m.start()
        # read a use-tree
        i = m.end(); depth = 0; txt = src[start:m.end()]
        if txt.endswith('{'):
            depth = 1
            while i < len(src) and depth:
                c = src[i]; txt += c; i += 1
                depth += (c == '{') - (c == '}')
        out.append(txt)
    return out
def expand(t):
    t = re.sub(r'\s+', '', t)
    m = re.match(r'^(.*?)::\{(.*)\}$', t)
    if not m: return [t]
    pre, inner = m.groups()
    parts, d, cur = [], 0, ''
    for c in inner:
        if c == ',' and d == 0: parts.append(cur); cur = ''; continue
        d += (c == '{') - (c == '}'); cur += c
    if cur: parts.append(cur)
    res = []
    for p in parts:
        for e in expand(p): res.append(pre + '::' + e)
    return res
edges = {}
for m, p in mods.items():
    for t in paths(strip(open(p).read())):
        for e in expand(t):
            segs = e.split('::')
            if segs[0] == 'crate': target = list(segs[1:])
            else:
                base = list(m) if not p.endswith('mod.rs') else list(m)
                base = list(m[:-1]) if not p.endswith('mod.rs') else list(m)
                # super from file module foo/bar.rs (mod bar) -> foo ; from foo/mod.rs -> parent of foo
                base = list(m[:-1])
                s2 = segs
                while s2 and s2[0] == 'super':
                    s2 = s2[1:]
                    if s2 and s2[0] == 'super': base = base[:-1]
                target = base + s2
            # find longest module prefix
            best = None
            for k in range(len(target), 0, -1):
                if tuple(target[:k]) in mods: best = tuple(target[:k]); break
            if best and best != m and not (m[:len(best)] == best):
                edges.setdefault(m, set()).add(best)
nodes = set(mods)
idx, low, st, on, comps, cnt = {}, {}, [], set(), [], [0]
sys.setrecursionlimit(10000)
def sc(v):
    idx[v] = low[v] = cnt[0]; cnt[0] += 1; st.append(v); on.add(v)
    for w in edges.get(v, ()):
        if w not in idx: sc(w); low[v] = min(low[v], low[w])
        elif w in on: low[v] = min(low[v], idx[w])
    if low[v] == idx[v]:
        c = []
        while True:
            w = st.pop(); on.discard(w); c.append(w)
            if w == v: break
        comps.append(c)
for v in sorted(nodes):
    if v not in idx: sc(v)
cyc = [sorted('::'.join(x) for x in c) for c in comps if len(c) > 1]
for c in cyc:
    print('CYCLE:', c)
    for a in c:
        for b in c:
            if tuple(b.split('::')) in edges.get(tuple(a.split('::')), ()): print('   ', a, '->', b)
print('module import cycles:', len(cyc))
sys.exit(1 if cyc else 0)
