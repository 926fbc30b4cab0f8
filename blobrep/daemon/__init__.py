"""``blobrep serve``: the gallery service over HTTP, in the shape of Azure Resource Manager.

* :mod:`~blobrep.daemon.app` builds the ASGI application (Starlette): routes, the
  authenticated caller of each request, ARM-shaped bodies and errors;
* :mod:`~blobrep.daemon.arm` turns the service's views into ARM resources and blobrep errors
  into ARM error bodies with their HTTP status;
* :mod:`~blobrep.daemon.server` runs it under uvicorn, owning the signals so that SIGTERM and
  Ctrl-C stop accepting, let running requests finish within a grace, and exit 0.

The daemon is a face like the CLI: it holds no logic of its own beyond translating HTTP to
service calls, so a request and the equivalent command say the same thing.
"""
