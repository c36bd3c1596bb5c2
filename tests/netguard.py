"""Run code with the network cut: every socket connection attempt and name lookup is recorded and refused.

Used by tests as ``python tests/netguard.py -c "<code>"``: the code runs with the guard installed, then the number of
attempts is printed as the last line (``network_attempts=N``).
"""

import socket
import sys

attempts: list[str] = []


def _refuse(kind):
    def guard(*args, **kwargs):
        attempts.append(f"{kind}{args[1:2] if kind == 'connect' else args[:1]}")
        raise OSError(f"network blocked by smolsynth's test guard ({kind})")

    return guard


socket.socket.connect = _refuse("connect")  # type: ignore[method-assign]
socket.socket.connect_ex = _refuse("connect")  # type: ignore[method-assign]
socket.getaddrinfo = _refuse("getaddrinfo")  # type: ignore[assignment]
socket.create_connection = _refuse("create_connection")  # type: ignore[assignment]

if __name__ == "__main__":
    assert sys.argv[1] == "-c", "usage: netguard.py -c CODE"
    try:
        exec(compile(sys.argv[2], "<netguard>", "exec"), {"__name__": "__main__"})
    finally:
        print(f"network_attempts={len(attempts)}", *attempts, sep="\n")
