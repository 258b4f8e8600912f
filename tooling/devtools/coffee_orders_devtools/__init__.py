"""Development tooling shared by the tests and the benchmark: processes and bounded waits."""
