"""Reading what the probe image (agent/test/probe.sh) reported.

report = ProbeReport.parse(text)      # a task log, container stdout, or PROBE_FINDINGS.txt
report.contains(b"sk-ant-...")        # anywhere in what it found, decoded
report.net("connect", "10.0.0.1:443") # -> ("refused", "HTTP/1.1 403 ...")
report.sys["capeff"]                  # -> "0000000000000000"
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field

_FINDING = re.compile(r"^PROBE (\w+) (\S+) (\d+) ([0-9a-f]*)$")
_NET = re.compile(r"^PROBE-NET (\w+) (\S+) (\w+) ?(.*)$")
_SYS = re.compile(r"^PROBE-SYS (\S+) (.*)$")
# In a diff the probe's file shows as added lines.
_DIFF_PREFIX = re.compile(r"^\+(?=PROBE)")


@dataclass
class ProbeReport:
    found: dict[tuple[str, str], bytes] = field(default_factory=dict)  # (kind, label) -> data
    nets: list[tuple[str, str, str, str]] = field(
        default_factory=list
    )  # what, target, verdict, detail
    sys: dict[str, str] = field(default_factory=dict)
    writable: dict[str, bool] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> ProbeReport:
        chunks: dict[tuple[str, str], dict[int, str]] = defaultdict(dict)
        report = cls()
        for raw in text.splitlines():
            line = _DIFF_PREFIX.sub("", raw.rstrip("\r"))
            if m := _FINDING.match(line):
                chunks[(m[1], m[2])][int(m[3])] = m[4]
            elif m := _NET.match(line):
                report.nets.append((m[1], m[2], m[3], m[4]))
            elif m := _SYS.match(line):
                if m[1] == "writable":
                    where, _, answer = m[2].rpartition(" ")
                    report.writable[where] = answer == "yes"
                else:
                    report.sys[m[1]] = m[2]
        for key, parts in chunks.items():
            # A chunk lost in between (e.g. a cut log) breaks the hex: keep the parts we have.
            report.found[key] = b"".join(
                bytes.fromhex(parts[i]) for i in sorted(parts) if len(parts[i]) % 2 == 0
            )
        return report

    @property
    def blob(self) -> bytes:
        return b"\n".join(self.found.values())

    def contains(self, secret: str | bytes) -> bool:
        needle = secret.encode() if isinstance(secret, str) else secret
        return needle in self.blob

    def where(self, secret: str | bytes) -> list[tuple[str, str]]:
        needle = secret.encode() if isinstance(secret, str) else secret
        return [key for key, data in self.found.items() if needle in data]

    def net(self, what: str, target: str) -> tuple[str, str]:
        for w, t, verdict, detail in self.nets:
            if (w, t) == (what, target):
                return verdict, detail
        raise AssertionError(f"the probe did not report {what} {target}: {self.nets}")

    def env(self) -> dict[str, str]:
        """The probe's own environment."""
        raw = self.found.get(("env", "self"), b"")
        pairs = (item.partition(b"=") for item in raw.split(b"\0") if item)
        return {k.decode(): v.decode("utf-8", "replace") for k, _, v in pairs}
