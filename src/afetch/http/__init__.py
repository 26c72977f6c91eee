"""The transport layer: send one request, get a response whose body streams.

Nothing above this package knows which HTTP client ran a request:

- ``transport.py``  the Transport protocol, the Request and Response types, the router
- ``request.py``    validation and rendering of a request head, shared by both transports
- ``decoding.py``   Content-Encoding in bounded pieces, for both transports
- ``lean/``         afetch's HTTP/1.1 client: pool, connecting (DNS, Happy Eyeballs, TLS),
                    one connection's protocol (llhttp)
- ``aiohttp_transport.py``  an aiohttp session behind the same protocol (proxies,
                    ``--http-client aiohttp``), with its exceptions mapped in one place
- ``timing.py``     what one exchange measured and learned
- ``oserrors.py``   socket, resolver and TLS errors → afetch's exception tree
"""

from afetch.http.base import Request, Response, Transport
from afetch.http.open import open_transport
from afetch.http.timing import HopTiming, begin_hop

__all__ = ["HopTiming", "Request", "Response", "Transport", "begin_hop", "open_transport"]
