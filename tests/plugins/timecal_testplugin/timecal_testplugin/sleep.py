"""The step of the ``sleeper`` script: ``python -m timecal_testplugin.sleep k=v ...``."""

import os
import subprocess
import sys
import time


def main(argv):
    params = dict(a.split("=", 1) for a in argv)
    print(f"sleeper pid={os.getpid()} argv={argv!r}", flush=True)
    flaky = params.get("flaky", "")
    if flaky and not os.path.exists(flaky):
        open(flaky, "w").close()
        print("flaky: failing this attempt", flush=True)
        return 3
    for _ in range(int(params.get("children", 0) or 0)):
        child = subprocess.Popen(["sleep", str(max(float(params.get("seconds", 0)), 1))])
        print(f"sleeper child pid={child.pid}", flush=True)
    held = []
    for _ in range(int(params.get("allocate", 0) or 0) // 16):  # 16 MiB at a time, resident
        held.append(b"x" * (16 << 20))
    if held:
        print(f"sleeper holds {16 * len(held)} MiB", flush=True)
    time.sleep(float(params.get("seconds", 0)))
    region = int(params.get("fail_index_min", -1))
    if 0 <= region <= int(params.get("index", 0)) and \
            int(params.get("level", 0)) >= int(params.get("fail_level_min", 0)):
        print(f"index {params.get('index')} level {params.get('level')}", flush=True)
        print("planted failure: this task is in the failing region", flush=True)
        return 4
    code = int(params.get("exit_code", 0))
    if code:
        print(f"failing on purpose with exit code {code}: {params.get('message', '')}", flush=True)
        return code
    with open("out.txt", "w") as fh:
        fh.write(("garbled " if params.get("garbled") == "1" else "") + repr(params) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
