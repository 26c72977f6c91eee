"""afetch's lean HTTP/1.1 client, by layer.

- ``pool.py``      keep-alive connections per origin; the Transport entry point
- ``connect.py``   a new connection: addresses, TCP (Happy Eyeballs), TLS
- ``protocol.py``  one connection's bytes: request out, response parsed by llhttp
  and framed strictly (bytes after the answer retire the connection)

aiohttp's ``ClientSession.request`` spends ~150 µs of CPU per request on
what afetch does itself (redirects, timeouts, retries, cookies it does not
keep); this client does only what a list fetcher needs, and llhttp (through
httptools) judges malformed responses as strictly as aiohttp's own parser.
"""
