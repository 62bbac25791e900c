"""`python -m cli`: the `webhooks` command, without its console script."""

from cli.main import main

main()
