"""Operator actions and lookups behind `traderctl traders|requeue|stats|signals`.

One module per job: :mod:`.db` (connection, named queries, row classes), :mod:`.lookups`
(parse and resolve ids, users, intervals), :mod:`.traders` (list, show, enable),
:mod:`.requeue`, :mod:`.stats` (the ops views) and :mod:`.signals` (following signals).
The CLI modules only parse options and render; errors are the admin group of
:mod:`traderctl.worker.errors`.
"""
