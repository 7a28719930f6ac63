"""``python -m ddlsim`` works like the ``ddlsim`` command."""

from ddlsim.cli import main

main()
