"""CTest entry of the `python` label: pytest on this folder; 77 (skip) without pytest."""
import os
import sys

try:
    import pytest
except ImportError:
    print(f"SKIP: pytest is not installed for {sys.executable}")
    sys.exit(77)

rc = pytest.main([os.path.dirname(os.path.abspath(__file__)), "-q", "-rs", "-p", "no:cacheprovider"])
sys.exit(77 if rc == pytest.ExitCode.NO_TESTS_COLLECTED else int(rc))
