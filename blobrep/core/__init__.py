"""Pure logic: no I/O, no anyio, no clock. Values in, values out, tested as functions."""
