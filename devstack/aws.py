"""The local AWS endpoint: moto's server for DynamoDB and SQS on 127.0.0.1.

DynamoDB evaluates a condition and applies its write atomically; moto's in-memory
backend does not when requests arrive on several threads at once (two conditional
writes can both pass). The endpoint therefore runs DynamoDB requests one at a time,
which is what the service's concurrency guarantees assume. SQS requests (long polls)
are not serialised.
"""
from __future__ import annotations

import threading

from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server


class _SerialDynamo:
    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB"):
            with self.lock:
                return list(self.app(environ, start_response))
        return self.app(environ, start_response)


class LocalAws(ThreadedMotoServer):
    def __init__(self, port: int = 0):
        super().__init__(ip_address="127.0.0.1", port=port, verbose=False)

    def _server_entry(self) -> None:
        app = _SerialDynamo(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(self._ip_address, self._port, app, True)
        self._server_ready_event.set()
        self._server.serve_forever()
