"""``python -m devstack run`` starts the local stack; ``python -m devstack token`` prints a token."""
from __future__ import annotations

import argparse
import os
import signal
import sys
import time


def _run(args) -> int:
    from devstack.stack import Stack, StackConfig

    # yesterday's bill is out from midnight here (at WeChat from about 10:00), so reconciling
    # yesterday works at any hour of a demo; today's is not out, as at WeChat
    cfg = StackConfig(api_port=args.port, aws_port=args.aws_port, sim_port=args.sim_port,
                      outcome_delay=args.outcome_delay, poll_interval=args.poll_interval, bill_ready_hour=0)
    if args.workdir:
        from pathlib import Path

        cfg.workdir = Path(args.workdir)
    busy = [f"{name} {port}" for name, port in (("API", args.port), ("AWS", args.aws_port), ("simulator", args.sim_port))
            if port and not _port_free(port)]
    if busy:
        print(f"port in use: {', '.join(busy)}; stop what uses it or choose other ports "
              "(PORT=..., SIM_PORT=..., AWS_PORT=...)", file=sys.stderr)
        return 1
    stack = Stack(cfg)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started in the background
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    stack.start()
    token = stack.admin_token()
    print(f"""
  Refund service (local stage) is running.

  API           {stack.api_url}/api/health
  Admin console {stack.api_url}/admin
  Admin token   {token}
  Console link  {stack.api_url}/admin#token={token}
  AWS endpoint  {stack.env['AWS_ENDPOINT_URL']}   (DynamoDB + SQS, moto)
  WeChat sim    {stack.sim.base_url}   (control API under /sim/)

  Try:  curl -s -H "Authorization: Bearer $(make -s token)" {stack.api_url}/api/admin/orders
  Staff tokens: make -s token ROLE=support|finance|admin [USER=<operator id>]
  Player token: make -s token ROLE=user USER=u1001
  Ctrl-C stops everything.
""", flush=True)
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        print("stopping...", flush=True)
    finally:
        _stop_within(stack, STOP_SECONDS)
    return 0


STOP_SECONDS = 4.0


def _stop_within(stack, seconds: float) -> None:
    """Stop the stack's servers and threads, giving up after ``seconds``, then leave at once.

    Everything the stack holds is in memory and is thrown away: after a long session the
    interpreter's own teardown (freeing every object one by one) took longer than the work
    itself, so the process ends with ``os._exit`` once the output is flushed."""
    import threading

    stopper = threading.Thread(target=stack.stop, name="stop", daemon=True)
    stopper.start()
    stopper.join(seconds)
    if stopper.is_alive():
        print(f"stopped without waiting for the rest (more than {seconds:g} s)", file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _port_free(port: int) -> bool:
    """True unless something listens on ``port``. SO_REUSEADDR, as the servers bind: connections
    of an earlier run still in TIME_WAIT do not count, a listening socket does."""
    import socket

    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def _token(args) -> int:
    os.environ.setdefault("STAGE", "local")
    from chalicelib.adapters import auth

    if args.role == "user" and not args.user:
        print("USER=<user_id> is required for a player token", file=sys.stderr)
        return 2
    # a staff token's subject is the operator (default: the role's name); four-eyes needs two people,
    # e.g. make -s token ROLE=support USER=alice and make -s token ROLE=finance USER=bob
    print(auth.issue(args.role, args.user or args.role))
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack")
    sub = parser.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="start the local stack")
    run.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    run.add_argument("--aws-port", type=int, default=int(os.environ.get("AWS_PORT", "8002")))
    run.add_argument("--sim-port", type=int, default=int(os.environ.get("SIM_PORT", "8001")))
    run.add_argument("--outcome-delay", type=float, default=2.0, help="seconds a WeChat refund stays PROCESSING")
    run.add_argument("--poll-interval", type=float, default=20.0, help="seconds between poll handler calls")
    run.add_argument("--workdir", default=None, help="where keys and state live (default .devstack/)")
    tok = sub.add_parser("token", help="print a token valid for the local stack")
    tok.add_argument("--role", choices=("support", "finance", "admin", "user"), default="admin")
    tok.add_argument("--user", default=None)
    args = parser.parse_args(argv)
    return _run(args) if args.cmd == "run" else _token(args)


if __name__ == "__main__":
    sys.exit(main())
