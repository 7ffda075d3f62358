"""The report tests' fixtures (make_result, write_results) live in tests/conftest.py: the check tests use them too."""
