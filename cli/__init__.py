"""The `xares` command line: parse, call the library, render with Rich. No logic of its own."""
