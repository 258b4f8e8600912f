"""The ``coffee-orders`` command line."""
