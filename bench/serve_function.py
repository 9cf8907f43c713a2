"""One staged function in one process, as the benchmark measures it: `python -m bench.serve_function
SOURCE_DIR TARGET PORT`.

functions-framework's own CLI serves through gunicorn (a master and a forked worker); here the
real handler is built the same way (`functions_framework.create_app`) and served by werkzeug in
this single process, so its peak RSS (and a cap set on it with prlimit) are the function's alone.
"""

from __future__ import annotations

import argparse
import os
import sys


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("source", help="the staged function folder (holds main.py)")
    parser.add_argument("target")
    parser.add_argument("port", type=int)
    args = parser.parse_args()
    os.chdir(args.source)
    sys.path.insert(0, args.source)
    import functions_framework
    from werkzeug.serving import make_server

    source = os.path.join(args.source, "main.py")
    app = functions_framework.create_app(args.target, source)  # type: ignore[no-untyped-call]
    server = make_server("127.0.0.1", args.port, app, threaded=False)
    server.serve_forever()


if __name__ == "__main__":
    main()
