#!/usr/bin/env python3
"""Fails when a public op has no row in the op table (Note [op table]).

Every function declared at namespace level in include/kirzl/ops/*.hpp is an op of the public API.
Each must have a row: a case Ops/<name>.* or Ops/<name>_<variant>.* (batch_norm_train, pow_2), where
<name>_<variant> is not itself another public op (max_pool2d does not cover max). What is not an op
is listed in NOT_OPS with the reason, so that the list is reviewed where it grows.

    check_coverage.py --headers include/kirzl/ops --program build/tests/ops_op_table_cuda
"""
import argparse
import pathlib
import re
import subprocess
import sys

# Declarations in the ops headers that compute nothing on tensors.
NOT_OPS = {
    "tf32_allowed": "a query of the thread's TF32 setting (tested in tests/ops/test_linalg.cpp)",
}

# A declaration at namespace level: a return type, the name, "(": not indented (members of the
# headers' option structs are), not a macro, a comment or a control statement.
DECLARATION = re.compile(r"^(?:inline\s+|constexpr\s+|\[\[nodiscard\]\]\s+)*[A-Za-z_][\w:<>,\s*&]*?[\s*&](\w+)\(")


def public_ops(headers: pathlib.Path) -> dict:
    ops = {}
    for header in sorted(headers.glob("*.hpp")):
        for number, line in enumerate(header.read_text().splitlines(), 1):
            if line.startswith(("//", "#", "return", "using", "namespace", "struct", "class", "enum")):
                continue
            m = DECLARATION.match(line)
            if m and not m.group(1).startswith("operator"):
                ops.setdefault(m.group(1), f"{header.name}:{number}")
    return ops


def row_ops(program: str) -> set:
    listing = subprocess.run([program, "--gtest_list_tests"], check=True, capture_output=True, text=True).stdout
    return {line[len("Ops/"):].rstrip(".") for line in listing.splitlines() if line.startswith("Ops/")}


def uncovered(ops: dict, rows: set) -> list:
    def covers(row: str, op: str) -> bool:
        return row == op or (row.startswith(op + "_") and row not in ops)
    return [op for op in sorted(ops) if op not in NOT_OPS and not any(covers(r, op) for r in rows)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--headers", required=True, type=pathlib.Path)
    parser.add_argument("--program", required=True, help="the op table program (ops_op_table_cuda)")
    args = parser.parse_args()
    ops = public_ops(args.headers)
    if len(ops) < 10:  # the parser lost the headers' shape: fail instead of passing on nothing
        print(f"found only {len(ops)} declarations in {args.headers}: {sorted(ops)}", file=sys.stderr)
        return 1
    stale = sorted(set(NOT_OPS) - set(ops))
    missing = uncovered(ops, row_ops(args.program))
    for op in missing:
        print(f"{op} ({ops[op]}) has no row in tests/ops/harness/rows_*.cpp (Note [op table])", file=sys.stderr)
    for name in stale:
        print(f"NOT_OPS lists {name}, which no ops header declares any more: remove it", file=sys.stderr)
    if missing or stale:
        return 1
    print(f"every one of the {len(ops) - len(NOT_OPS)} public ops in {args.headers} has a row")
    return 0


if __name__ == "__main__":
    sys.exit(main())
