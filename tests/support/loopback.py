"""The one way the test servers (fake Canvas, fake Moodle, the OneRoster server, the lti1p3platform server) run: a
``ThreadingHTTPServer`` on 127.0.0.1 with a port the system picks, served from a daemon thread, used as a context
manager. A subclass builds its handler in ``start()`` and hands the server to ``_serve``."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from http.server import ThreadingHTTPServer
from typing import Self


class LoopbackServer(ABC):
    _server: ThreadingHTTPServer | None = None

    @abstractmethod
    def start(self) -> Self:
        """Build the handler and call ``_serve``; return ``self``."""

    def _serve(self, server: ThreadingHTTPServer, name: str) -> Self:
        server.daemon_threads = True
        self._server = server
        threading.Thread(target=server.serve_forever, name=name, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"
