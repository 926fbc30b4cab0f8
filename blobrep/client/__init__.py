"""The CLI as a client of a running daemon (``blobrep --endpoint URL``).

:class:`~blobrep.client.service.RemoteGalleryService` has the methods of the gallery service
that the remote-capable commands call, answered by the daemon's ARM-shaped API over HTTP
(httpx2): values read back into the gallery model, failures back into blobrep's errors, a
version's disk streamed up and down. The CLI prints what it returns with its own code, so a
command says the same thing, and exits with the same status, against a daemon as against a
home.

* :mod:`~blobrep.client.connection`: requests, paging, transport failures;
* :mod:`~blobrep.client.errors`: statuses and ARM error bodies back into errors;
* :mod:`~blobrep.client.resources` and :mod:`~blobrep.client.bodies`: ARM JSON from and to
  the gallery model;
* :mod:`~blobrep.client.versions`, :mod:`~blobrep.client.operations`,
  :mod:`~blobrep.client.transfers`: version writes, long-running operations, uploads and
  downloads;
* :mod:`~blobrep.client.sharing`: principals, group members and role assignments.

Nothing here is imported unless a command runs with ``--endpoint``.
"""
