"""The local AWS services other than SageMaker: moto in server mode, on a free loopback port.

Run as ``python -m local_aws.moto_server --ready-file PATH``; it writes
``{"url": ..., "pid": ...}`` to the ready file once it listens, and stops on SIGTERM or SIGINT.
One moto server answers every service the project uses (S3, EventBridge, SQS, DynamoDB,
CloudWatch, CloudWatch Logs, SNS, SSM, IAM, STS): boto3 reaches it through ``AWS_ENDPOINT_URL``.
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from local_aws.procs import LOOPBACK, NO_NAGLE, write_ready_file


def moto_server(port: int = 0) -> Any:
    """moto's threaded server on the loopback interface, replying without Nagle's delay (procs.NO_NAGLE)."""
    from moto.server import ThreadedMotoServer
    from werkzeug.serving import WSGIRequestHandler

    WSGIRequestHandler.disable_nagle_algorithm = NO_NAGLE  # the handler class moto's server uses
    return ThreadedMotoServer(ip_address=LOOPBACK, port=port, verbose=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_aws.moto_server", description=__doc__)
    parser.add_argument("--ready-file", type=Path, required=True, help="where to write the URL once listening")
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0: any free port)")
    args = parser.parse_args(argv)

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    server = moto_server(args.port)
    server.start()
    host, port = server.get_host_and_port()
    write_ready_file(args.ready_file, {"url": f"http://{host}:{port}", "pid": os.getpid()})
    stop.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
