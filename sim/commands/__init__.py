"""One module per `dsqsim` subcommand; each exposes `register(subparsers)`. Heavy imports stay inside `run`."""
