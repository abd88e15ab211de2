"""Keep bench/RESULTS.md current: each benchmark replaces its own section.

Used by every script in bench/ after it prints its last line.
"""

import datetime
import platform
import re
import shlex
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
HEADER = "# Benchmark results\n\nWritten by the benchmarks themselves (bench/results.py); the newest run of each replaces its section.\n"


def record(name: str, last_line: str, details: str = "") -> None:
    command = "python " + " ".join(shlex.quote(a) for a in [f"bench/{Path(sys.argv[0]).name}", *sys.argv[1:]])
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    body = (
        f"## {name}\n\n"
        f"- date: {when}\n- command: `{command}`\n- machine: {platform.machine()}, Python {platform.python_version()}\n\n"
        f"```\n{last_line}\n```\n"
    )
    if details:
        body += f"\n{details.strip()}\n"
    text = RESULTS.read_text() if RESULTS.exists() else HEADER
    pattern = re.compile(rf"^## {re.escape(name)}\n.*?(?=^## |\Z)", re.S | re.M)
    text = pattern.sub(lambda _: body + "\n", text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + body
    RESULTS.write_text(text)
