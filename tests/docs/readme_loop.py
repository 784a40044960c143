#!/usr/bin/env python3
"""The README's C++ training loop must be the text of docs/tutorial/train_loop.cpp between its
readme-begin/readme-end markers (that file is compiled by tests/tutorial), so the README shows
code that compiles. Usage: readme_loop.py SOURCE_DIR"""
import re
import sys
import textwrap

root = sys.argv[1]
readme = open(f"{root}/README.md", encoding="utf-8").read()
source = open(f"{root}/docs/tutorial/train_loop.cpp", encoding="utf-8").read()
shown = re.findall(r"```cpp\n(.*?)```", readme, flags=re.S)
compiled = textwrap.dedent(re.search(r"// readme-begin\n(.*?)\n *// readme-end", source, flags=re.S).group(1)) + "\n"
if compiled not in shown:
    print("readme_loop: README.md's ```cpp block differs from docs/tutorial/train_loop.cpp (readme-begin..end):",
          compiled, sep="\n", file=sys.stderr)
    sys.exit(1)
print("readme_loop: the README's training loop is docs/tutorial/train_loop.cpp")
