#!/usr/bin/env python3
"""Lists import cycles between the files of a crate: `scripts/import-cycles.py host/src filter/src`.

A file imports another when it names one of its items through `crate::…` or `super::…` (in a
`use` or a path); `mod x;` declarations and a test module's `use super::*` into the file that
declares it are containment, not imports. Prints each directory's files and edges, then every
strongly connected set of more than one file; exits 1 when there is one.
"""
import os
import re
import sys


def module_files(src):
    """module path (tuple) -> file, for every .rs file under src."""
    files = {}
    for root, _, names in os.walk(src):
        for name in names:
            if not name.endswith(".rs"):
                continue
            path = os.path.join(root, name)
            rel = os.path.relpath(path, src)[:-3].split(os.sep)
            if rel[-1] in ("lib", "main") and len(rel) == 1:
                rel = []
            elif rel[-1] == "mod":
                rel = rel[:-1]
            files[tuple(rel)] = path
    return files


def declared_test_modules(text):
    """`#[path = "x_tests.rs"] mod tests;`: files that are this file's test children."""
    return set(re.findall(r'#\[path\s*=\s*"([^"]+)"\]\s*mod\s+\w+\s*;', text))


def expand_use_tree(tree):
    """`a::{b, c::{d, self}}` -> [['a','b'], ['a','c','d'], ['a','c']]."""
    tree = tree.strip()
    if not tree:
        return [[]]
    depth, i = 0, 0
    # split a prefix `a::b::` from a braced group
    m = re.match(r"((?:\w+\s*::\s*)*)\{(.*)\}\s*$", tree, flags=re.S)
    if m:
        prefix = [p.strip() for p in m.group(1).split("::") if p.strip()]
        inner, items, cur = m.group(2), [], ""
        for ch in inner:
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            if ch == "," and depth == 0:
                items.append(cur)
                cur = ""
            else:
                cur += ch
        items.append(cur)
        out = []
        for item in items:
            if item.strip():
                for sub in expand_use_tree(item):
                    out.append(prefix + [x for x in sub if x != "self"])
        return out
    name = re.split(r"\s+as\s+", tree)[0]
    return [[p.strip() for p in name.split("::") if p.strip() and p.strip() != "*"]]


def referenced_paths(text):
    """(head, path parts) for every `crate::…`/`super::…` a file names, `use` trees expanded."""
    found = []
    for m in re.finditer(r"\buse\s+(crate|(?:super\s*::\s*)*super)\s*::\s*([^;]*);", text):
        head = "crate" if m.group(1) == "crate" else "super" * m.group(1).count("super")
        for parts in expand_use_tree(m.group(2)):
            found.append((head, parts))
    body = re.sub(r"\buse\s+[^;]*;", "", text)
    for m in re.finditer(r"\b(crate|(?:super::)*super)::((?:\w+::)*\w+)", body):
        head = "crate" if m.group(1) == "crate" else "super" * m.group(1).count("super")
        found.append((head, m.group(2).split("::")))
    return found


def strip_inline_modules(text):
    """Drops `mod name { … }` blocks (inline test modules): their `super` is the file itself."""
    while True:
        m = re.search(r"\bmod\s+\w+\s*\{", text)
        if not m:
            return text
        depth, i = 0, m.end() - 1
        while i < len(text):
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            if depth == 0:
                break
            i += 1
        text = text[: m.start()] + text[i + 1 :]


def strip_comments(text):
    text = re.sub(r"//[^\n]*", "", text)
    return re.sub(r"/\*.*?\*/", "", text, flags=re.S)


def edges(src):
    files = module_files(src)
    out = {f: set() for f in files.values()}
    test_children = {}
    for mod, path in files.items():
        text = open(path, encoding="utf-8").read()
        for child in declared_test_modules(text):
            test_children[os.path.normpath(os.path.join(os.path.dirname(path), child))] = path
    for mod, path in files.items():
        text = strip_inline_modules(strip_comments(open(path, encoding="utf-8").read()))
        for head, parts in referenced_paths(text):
            if head == "crate":
                base = []
            else:
                if path in test_children:
                    # a `#[path]` test child is a module inside its declaring file
                    continue
                # `super` from `a/b.rs` (module a::b) and from `a/b/mod.rs` alike is `a`
                base = list(mod)[: max(0, len(mod) - head.count("super"))]
            target = None
            cand = base + parts
            while True:
                if tuple(cand) in files:
                    target = files[tuple(cand)]
                    break
                if len(cand) <= len(base) or not cand:
                    target = files.get(tuple(cand))
                    break
                cand = cand[:-1]
            if target and target != path:
                out[path].add(target)
    return out


def cycles(graph):
    index, low, stack, on, sccs, counter = {}, {}, [], set(), [], [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            scc = []
            while True:
                w = stack.pop()
                on.discard(w)
                scc.append(w)
                if w == v:
                    break
            if len(scc) > 1:
                sccs.append(sorted(scc))

    sys.setrecursionlimit(10000)
    for v in graph:
        if v not in index:
            strong(v)
    return sccs


def main():
    found = False
    for src in sys.argv[1:] or ["host/src", "filter/src", "sidecar/src"]:
        graph = edges(src)
        n_edges = sum(len(v) for v in graph.values())
        sccs = cycles(graph)
        print(f"{src}: {len(graph)} files, {n_edges} imports, {len(sccs)} cycles")
        for scc in sccs:
            found = True
            print("  cycle: " + " <-> ".join(os.path.relpath(p, src) for p in scc))
    sys.exit(1 if found else 0)


if __name__ == "__main__":
    main()
