"""Is an object-store server of ``tools/services.py`` ready? Exit 0 once a signed listing works.

``services_probe.py URL`` (``s3://BUCKET`` or ``az://CONTAINER``), with the endpoint and
credentials in the environment as ``services start`` exports them; run with the venv's
Python, which has obstore. The listing is signed, so success means the server is up, the
credentials are accepted and the bucket or container exists.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import obstore
from obstore.store import from_url

if TYPE_CHECKING:
    from obstore.store import ClientConfig


def main(url: str) -> int:
    try:
        # Client options replace those the environment gives: loopback is plain HTTP.
        options: ClientConfig = {"allow_http": True, "timeout": "5s", "connect_timeout": "2s"}
        store = from_url(url, client_options=options, retry_config={"max_retries": 0})
        obstore.list(store, chunk_size=1).collect()
    except Exception as exc:  # any failure means "not ready yet"; the reason is printed
        print(f"{url}: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
