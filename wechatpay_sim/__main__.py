"""``python -m wechatpay_sim --keys .devstack/keys --port 8001``"""
from __future__ import annotations

import argparse
import logging
import signal
import sys

from .bill_api import DEFAULT_READY_HOUR
from .keys import generate_keyset
from .server import Simulator


def _ready_hour(text: str) -> int | None:
    if text.lower() == "none":
        return None
    hour = int(text)
    if not 0 <= hour <= 23:
        raise argparse.ArgumentTypeError("an hour 0-23, or none")
    return hour


def _terminate(signum, frame):  # SIGTERM: stop like Ctrl-C
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wechatpay_sim", description=__doc__)
    parser.add_argument("--keys", default=".devstack/keys", help="key directory (created if missing)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--outcome-delay", type=float, default=1.0, help="seconds PROCESSING lasts")
    parser.add_argument(
        "--notify-retry", default="1,2,4,8", help="comma-separated delays between notification retries"
    )
    parser.add_argument("--default-notify-url", default=None, help="used when a refund names no notify_url")
    parser.add_argument("--key-mode", choices=("public_key", "certificate", "both"), default="public_key")
    parser.add_argument("--refund-interval", type=float, default=60.0,
                        help="seconds required between two refunds of one order (0: off)")
    parser.add_argument("--bill-ready-hour", type=_ready_hour, default=DEFAULT_READY_HOUR,
                        help="a day's bill is ready the next day from this Beijing hour (default 10, as at "
                             "WeChat); 'none': any day's bill at once, today's so far")
    parser.add_argument("--print-env", action="store_true", help="print WECHAT_* settings for the service and exit")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)

    keyset = generate_keyset(args.keys)
    if args.print_env:
        env = keyset.env()
        env["WECHAT_BASE_URL"] = f"http://{args.host}:{args.port}"
        for name, value in env.items():
            print(f"{name}={value}")
        return 0

    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    schedule = tuple(float(s) for s in args.notify_retry.split(",") if s.strip())
    sim = Simulator(
        keyset,
        args.host,
        args.port,
        outcome_delay=args.outcome_delay,
        notify_retry_schedule=schedule,
        key_mode=args.key_mode,
        default_notify_url=args.default_notify_url,
        refund_interval_seconds=args.refund_interval,
        bill_ready_hour=args.bill_ready_hour,
    )
    signal.signal(signal.SIGTERM, _terminate)
    try:
        sim.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
