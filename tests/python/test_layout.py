"""The ctypes mirrors (python/gdngraph/_structs.py) against the C compiler's layouts,
printed by layout_probe.c (the `probe` fixture of conftest.py)."""
import pytest

from conftest import check_layout
from gdngraph import _structs as S


@pytest.mark.parametrize("cname", sorted(S.MIRRORS))
def test_struct_matches_c(probe, cname):
    check_layout(probe, cname, S.MIRRORS[cname])
