"""The run layer: requests in, one result per request out, under supervision.

``scheduler`` is the contract (ordering, the ledger of unfinished requests),
``engine`` runs it in this process, ``processes`` over ``--workers`` worker
processes (each one runs ``worker``), ``loop`` picks the event loop.
"""
