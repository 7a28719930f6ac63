"""Architecture rules the import contracts cannot state: no module imports another
module's private (underscore) names, and source files stay readable in size."""

import ast
from pathlib import Path

SRC = Path(__file__).parents[1] / "src" / "ddlsim"
#: "files stay under about 400 lines"; the margin is for docstrings, not for growth
MAX_LINES = 420


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _private_imports(path: Path) -> list[str]:
    me = _module_name(path)
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.ImportFrom) or not node.module:
            continue
        if not node.module.startswith("ddlsim") or node.module == me:
            continue
        for alias in node.names:
            if alias.name.startswith("_") and not alias.name.startswith("__"):
                out.append(f"{me}: from {node.module} import {alias.name}")
    return out


def test_no_module_imports_another_modules_private_names():
    bad = [hit for path in sorted(SRC.rglob("*.py")) for hit in _private_imports(path)]
    assert not bad, "\n".join(bad)


def test_source_files_stay_under_about_400_lines():
    long = {str(p.relative_to(SRC)): n for p in sorted(SRC.rglob("*.py"))
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, long


def test_the_rule_catches_a_private_import(tmp_path):
    mod = SRC / "api" / "_probe_for_test.py"
    mod.write_text("from ddlsim.api.dp import _device_links\n")
    try:
        assert _private_imports(mod) == [
            "ddlsim.api._probe_for_test: from ddlsim.api.dp import _device_links"]
    finally:
        mod.unlink()
