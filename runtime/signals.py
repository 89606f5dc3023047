"""Signal names and numbers as runc parses them: "9", "KILL", "SIGKILL", "sigkill",
"RTMIN+3"."""

import _signal

from .errors import Error

NAMES = {n[3:]: getattr(_signal, n) for n in dir(_signal)
         if n.startswith("SIG") and not n.startswith("SIG_") and n not in ("SIGRTMIN", "SIGRTMAX")}


def parse(text):
    try:
        num = int(text)
    except ValueError:
        pass
    else:
        if num < 0 or num > _signal.SIGRTMAX:
            raise Error(f"invalid signal number {num}")
        return num
    name = text.upper()
    if name.startswith("SIG"):
        name = name[3:]
    if name in NAMES:
        return NAMES[name]
    for base, value in (("RTMIN", _signal.SIGRTMIN), ("RTMAX", _signal.SIGRTMAX)):
        if name == base:
            return value
        if name.startswith(base) and name[len(base)] in "+-" and name[len(base) + 1:].isdigit():
            num = value + int(name[len(base):])
            if _signal.SIGRTMIN <= num <= _signal.SIGRTMAX:
                return num
    raise Error(f"unknown signal {text!r}")
