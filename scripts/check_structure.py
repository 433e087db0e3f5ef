#!/usr/bin/env python3
"""The structure the code keeps, checked in the test command (scripts/test.sh).

- no file over 500 lines in src/ and scripts/;
- no Python function over 80 lines (counted as clippy's `too_many_lines` counts Rust: lines of
  the function that are neither blank nor comments; docstrings count as comments). Rust
  functions are held by clippy itself (`too-many-lines-threshold` in clippy.toml);
- no import cycle between the crate's top-level modules, and every import goes down the layers
  `src/lib.rs` declares (its lines `//! N. name, name: ...`);
- outside `src/vocab/`, no wildcard arm, `matches!` or `if let` standing in for a per-kind fact
  of `Plan`, `Step` or `Status` (the compiler then points at every place a new kind must be
  handled).

Prints each finding as `path:line: message` and exits 1 if there is any.
"""

from __future__ import annotations

import ast
import io
import os
import re
import sys
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_FILE_LINES = 500
MAX_FUNCTION_LINES = 80
VOCABULARY = ("Plan", "Step", "Status")


def source_files(top: str, suffixes: tuple[str, ...]) -> list[Path]:
    found = []
    for dirpath, dirnames, filenames in os.walk(ROOT / top):
        dirnames[:] = [d for d in dirnames if d not in ("__pycache__", "snapshots")]
        for name in filenames:
            if name.endswith(suffixes):
                found.append(Path(dirpath) / name)
    return sorted(found)


def long_files() -> list[str]:
    out = []
    for path in source_files("src", (".rs",)) + source_files("scripts", (".py", ".sh")):
        lines = path.read_text().count("\n")
        if lines > MAX_FILE_LINES:
            out.append(f"{rel(path)}:1: {lines} lines (at most {MAX_FILE_LINES})")
    return out


def python_code_lines(text: str) -> set[int]:
    """Line numbers holding code: not blank, not only a comment, not a docstring."""
    code: set[int] = set()
    docstrings: set[int] = set()
    tree = ast.parse(text)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            value = body[0].value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                docstrings.update(range(body[0].lineno, body[0].end_lineno + 1))
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT,
                        tokenize.DEDENT, tokenize.ENDMARKER):
            continue
        for line in range(tok.start[0], tok.end[0] + 1):
            if line not in docstrings:
                code.add(line)
    return code


def long_python_functions() -> list[str]:
    out = []
    for path in source_files("scripts", (".py",)):
        text = path.read_text()
        code = python_code_lines(text)
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = sum(1 for line in range(node.lineno, node.end_lineno + 1) if line in code)
                if n > MAX_FUNCTION_LINES:
                    out.append(f"{rel(path)}:{node.lineno}: function {node.name} has {n} lines "
                               f"(at most {MAX_FUNCTION_LINES})")
    return out


def strip_rust_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def without_tests(text: str) -> str:
    return re.split(r"#\[cfg\(test\)\]\s*mod\s+\w+", text)[0]


def declared_layers() -> dict[str, int]:
    layers: dict[str, int] = {}
    for line in (ROOT / "src/lib.rs").read_text().splitlines():
        m = re.match(r"//!\s*(\d+)\.\s*([^:]+):", line)
        if m:
            for name in re.findall(r"`?(\w+)`?", m.group(2)):
                layers[name] = int(m.group(1))
    return layers


def module_edges() -> dict[str, dict[str, str]]:
    """Top-level module -> {module it imports: where}."""
    edges: dict[str, dict[str, str]] = {}
    modules = {p.stem if p.parent == ROOT / "src" else p.relative_to(ROOT / "src").parts[0]
               for p in source_files("src", (".rs",))} - {"main", "lib"}
    for path in source_files("src", (".rs",)):
        parts = path.relative_to(ROOT / "src").parts
        top = parts[0].removesuffix(".rs")
        if top in ("main", "lib"):
            continue
        text = without_tests(strip_rust_comments(path.read_text()))
        found = edges.setdefault(top, {})
        for lineno, line in enumerate(text.splitlines(), 1):
            names = re.findall(r"crate::(\w+)", line)
            names += re.findall(r"crate::\{\s*(\w+)", line)
            for name in names:
                if name != top and name in modules:
                    found.setdefault(name, f"{rel(path)}:{lineno}")
        for block in re.finditer(r"use crate::\{(.*?)\};", text, flags=re.S):
            start = text[: block.start()].count("\n") + 1
            for name in re.findall(r"(?:^|[{,]\s*)(\w+)", block.group(1)):
                if name != top and name in modules:
                    found.setdefault(name, f"{rel(path)}:{start}")
    for m in modules:
        edges.setdefault(m, {})
    return edges


def cycles_and_layers() -> list[str]:
    out = []
    edges = module_edges()
    layers = declared_layers()
    for module in sorted(edges):
        if module not in layers:
            out.append(f"src/lib.rs:1: module {module} is in no layer of the lib.rs list")
    for module, targets in sorted(edges.items()):
        for target, where in sorted(targets.items()):
            if module in layers and target in layers and layers[target] > layers[module]:
                out.append(f"{where}: {module} (layer {layers[module]}) imports {target} "
                           f"(layer {layers[target]}): imports go down the layers")
    # Tarjan-free: a DFS that reports each cycle once by its smallest member.
    seen_cycles: set[tuple[str, ...]] = set()

    def visit(node: str, path: list[str]) -> None:
        for nxt in sorted(edges.get(node, {})):
            if nxt in path:
                cycle = path[path.index(nxt):]
                i = cycle.index(min(cycle))
                key = tuple(cycle[i:] + cycle[:i])
                if key not in seen_cycles:
                    seen_cycles.add(key)
                    hops = " -> ".join(key + (key[0],))
                    out.append(f"{edges[node][nxt]}: import cycle {hops}")
            elif len(path) < 12:
                visit(nxt, path + [nxt])

    for start in sorted(edges):
        visit(start, [start])
    return out


def vocabulary_shortcuts() -> list[str]:
    out = []
    kinds = "|".join(VOCABULARY)
    patterns = [
        (re.compile(rf"matches!\s*\([^;]*?\b(?:{kinds})::", re.S), "matches! on"),
        (re.compile(rf"\bif\s+let\s+(?:Some\(\s*)?(?:{kinds})::"), "if let on"),
        (re.compile(rf"\blet\s+(?:{kinds})::\w+\s*(?:\{{[^}}]*\}}|\([^)]*\))?\s*=[^;]*\belse\b", re.S),
         "let-else on"),
    ]
    for path in source_files("src", (".rs",)):
        if "vocab" in path.relative_to(ROOT / "src").parts:
            continue
        text = without_tests(strip_rust_comments(path.read_text()))
        for pattern, what in patterns:
            for m in pattern.finditer(text):
                line = text[: m.start()].count("\n") + 1
                kind = re.search(rf"\b({kinds})::", m.group(0)).group(1)
                out.append(f"{rel(path)}:{line}: {what} {kind}: make it an exhaustive match "
                           f"or a method in src/vocab")
    return out


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def self_test() -> None:
    """Each rule finds what it is for in a small tree made for it (the check can fail)."""
    import tempfile

    global ROOT
    saved = ROOT
    with tempfile.TemporaryDirectory() as tmp:
        ROOT = Path(tmp)
        (ROOT / "src/low").mkdir(parents=True)
        (ROOT / "scripts").mkdir()
        (ROOT / "src/lib.rs").write_text("//! 0. low: the bottom.\n//! 1. high: above.\n")
        (ROOT / "src/low/mod.rs").write_text("use crate::high::X;\nfn f(p: Plan) -> bool {\n"
                                             "    matches!(p, Plan::User { .. })\n}\n")
        (ROOT / "src/high.rs").write_text("use crate::low::Y;\n" + "//\n" * 501)
        body = "".join(f"    x{i} = {i}\n" for i in range(81))
        (ROOT / "scripts/long.py").write_text(f"def long():\n{body}")
        found = "\n".join(long_files() + long_python_functions() + cycles_and_layers()
                          + vocabulary_shortcuts())
    ROOT = saved
    for expected in ["src/high.rs:1: 502 lines", "function long has 82 lines",
                     "low (layer 0) imports high (layer 1)", "import cycle high -> low -> high",
                     "src/low/mod.rs:3: matches! on Plan"]:
        assert expected in found, f"self-test: {expected!r} not found in:\n{found}"


def main() -> int:
    self_test()
    findings = long_files() + long_python_functions() + cycles_and_layers() + vocabulary_shortcuts()
    for f in findings:
        print(f)
    if findings:
        print(f"{len(findings)} structure finding(s): see scripts/check_structure.py", file=sys.stderr)
        return 1
    print("structure: files <= 500 lines, Python functions <= 80 lines, no module cycles, "
          "layers as src/lib.rs declares, exhaustive matches on Plan/Step/Status")
    return 0


if __name__ == "__main__":
    sys.exit(main())
