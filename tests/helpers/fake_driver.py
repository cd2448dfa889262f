"""A fake driver, as another user would run it to stand in for the owner's: it serves the
control channel's protocol on a Unix socket and a "scheduler" of its choice on a TCP port,
and writes down everything that reaches it (one JSON line per event) so that a test can
tell whether the owner's command said anything to it.

    python fake_driver.py SOCKET LOG USER   (prints "ready PORT" once both listen)

Started as root, it becomes USER before it listens anywhere (the interpreter may live where
USER cannot read: it is loaded first).
"""

import json
import os
import pwd
import socket
import sys
import threading


def note(log: str, **event) -> None:
    with open(log, "a") as fh:
        fh.write(json.dumps(event) + "\n")


def main() -> None:
    path, log, name = sys.argv[1:4]
    user = pwd.getpwnam(name)
    os.setgroups([])
    os.setgid(user.pw_gid)
    os.setuid(user.pw_uid)
    scheduler = socket.socket()
    scheduler.bind(("127.0.0.1", 0))
    scheduler.listen()
    port = scheduler.getsockname()[1]
    answer = {"ok": {"scheduler": f"tls://127.0.0.1:{port}", "tls": None, "stopped": True,
                     "text": "fake", "last": 0, "items": [], "counts": {}, "done": 0, "total": 0,
                     "finished": False, "interval": 1, "verbose": False, "backend": "local",
                     "commands": []}}

    def accept_scheduler():
        while True:
            conn, _ = scheduler.accept()
            note(log, event="scheduler connection")
            conn.close()

    def serve(conn):
        with conn, conn.makefile("rwb") as fh:
            for line in fh:
                note(log, event="request", line=line.decode(errors="replace").strip())
                fh.write((json.dumps(answer) + "\n").encode())
                fh.flush()

    threading.Thread(target=accept_scheduler, daemon=True).start()
    if os.path.exists(path):
        os.unlink(path)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    os.chmod(path, 0o777)
    server.listen()
    print(f"ready {port}", flush=True)
    while True:
        conn, _ = server.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main()
