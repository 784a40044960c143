#!/usr/bin/env python3
"""Runs one tutorial step exactly as its page says, and checks the output the page states.

A page of docs/tutorial/ marks the commands a reader types with `<!-- run -->` on the line before
a ```sh block, and states what they print in `<!-- expect ... -->` comments next to the visible
"Expected output". So the page and its test cannot drift apart: this script reads both from the
page. See Note [tutorial checks] below.

Usage: run_step.py PAGE --source-dir DIR --build-dir DIR
"""
import argparse
import json
import operator
import os
import re
import subprocess
import sys
import tempfile

# Note [tutorial checks]: the forms of an expectation, each on one line:
#   <!-- expect: KEY OP NUMBER -->   the last JSON line that has KEY: its value OP NUMBER
#                                    (OP one of >= <= > < ==)
#   <!-- expect: KEY == "TEXT" -->   the same for a string value
#   <!-- expect-line: REGEX -->      some line of the output matches REGEX
#   <!-- expect-file: PATH -->       the commands left a non-empty file PATH (relative to the run)
# Commands run with bash -e in a fresh temporary directory; a path starting with build/, scripts/ or
# docs/ is taken relative to the build or source tree, as a reader at the repository root would
# mean it. The output of every block is joined; the script exits 1 naming each failed expectation.

OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt, "==": operator.eq}


def commands(page_text):
    """The ```sh blocks that follow a `<!-- run -->` line."""
    blocks = re.findall(r"<!-- run -->\s*\n```sh\n(.*?)```", page_text, flags=re.S)
    if not blocks:
        raise SystemExit("run_step: no `<!-- run -->` block found")
    return blocks


def localise(block, source_dir, build_dir):
    """Rewrites build/, scripts/ and docs/ at the start of a word into absolute paths."""
    block = re.sub(r"(?<![\w./-])build/", build_dir.rstrip("/") + "/", block)
    return re.sub(r"(?<![\w./-])(scripts|docs)/", lambda m: os.path.join(source_dir, m.group(1)) + "/", block)


def json_lines(output):
    for line in output.splitlines():
        line = line.strip()
        if line.startswith("{") and line.endswith("}"):
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                pass


def check(page_text, output, workdir):
    failures = []
    for key, op, value in re.findall(r"<!-- expect: (\w+) (>=|<=|==|>|<) (.+?) -->", page_text):
        want = json.loads(value)
        found = [obj[key] for obj in json_lines(output) if key in obj]
        if not found:
            failures.append(f"no JSON line with '{key}'")
        elif not OPS[op](found[-1], want):
            failures.append(f"{key} = {found[-1]!r}, expected {op} {want!r}")
    for pattern in re.findall(r"<!-- expect-line: (.+?) -->", page_text):
        if not re.search(pattern, output, flags=re.M):
            failures.append(f"no line matches /{pattern}/")
    for path in re.findall(r"<!-- expect-file: (.+?) -->", page_text):
        full = os.path.join(workdir, path)
        if not os.path.isfile(full) or os.path.getsize(full) == 0:
            failures.append(f"no file '{path}' (or it is empty)")
    return failures


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("page")
    ap.add_argument("--source-dir", required=True)
    ap.add_argument("--build-dir", required=True)
    args = ap.parse_args()
    with open(args.page, encoding="utf-8") as f:
        text = f.read()
    if "<!-- expect" not in text:
        raise SystemExit(f"run_step: {args.page} states no expected output")
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMP_WAIT_POLICY="passive")
    output = ""
    with tempfile.TemporaryDirectory(prefix="kirzl-tutorial-") as workdir:
        for block in commands(text):
            script = localise(block, os.path.abspath(args.source_dir), os.path.abspath(args.build_dir))
            print(f"$ {script.strip()}", flush=True)
            r = subprocess.run(["bash", "-e", "-c", script], cwd=workdir, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
            print(r.stdout, flush=True)
            output += r.stdout
            if r.returncode != 0:
                print(f"run_step: the block above exited with status {r.returncode}", file=sys.stderr)
                return 1
        failures = check(text, output, workdir)
    for f in failures:
        print(f"run_step: {os.path.basename(args.page)}: {f}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
