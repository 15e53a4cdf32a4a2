"""gdngraph against FLA's chunk_gated_delta_rule (a second oracle) on random varlen GVA
batches with initial states: within 1e-2 relative L2 of FLA, and at least as close to
the float64 recurrence as FLA. Skips when `fla` is not importable (bench/peers/run.sh
installs the wheels into /tmp/peers; run pytest with PYTHONPATH=/tmp/peers)."""
import pytest

torch = pytest.importorskip("torch", reason="torch is not installed")

import gdngraph  # noqa: E402
from conftest import needs_cuda, needs_forward  # noqa: E402
from reference import random_batch, random_lengths, recurrence, rel_l2  # noqa: E402

pytestmark = needs_cuda

# Ours may be no more than this factor farther from the float64 reference than FLA
# (measurement noise between two bf16-input implementations of the same math).
SLACK = 1.05


def _fla():
    try:
        from fla.ops.gated_delta_rule import chunk_gated_delta_rule
    except Exception as e:  # ImportError, or a missing dependency of fla (einops, triton)
        pytest.skip(f"fla is not importable ({type(e).__name__}: {e})")
    return chunk_gated_delta_rule


@pytest.mark.parametrize("Hk,Hv,n,total,seed", [(4, 8, 6, 3000, 0), (2, 8, 3, 700, 1), (16, 32, 2, 600, 2)])
@pytest.mark.parametrize("state_v_first", [False, True])
def test_matches_fla(Hk, Hv, n, total, seed, state_v_first):
    fla_gdr = _fla()
    needs_forward()
    K = V = 128
    lengths = random_lengths(torch.Generator().manual_seed(seed), n, total)
    b = random_batch(lengths, Hk, Hv, K, V, "cuda", seed=seed)
    h0 = b["h0"].transpose(-1, -2).contiguous() if state_v_first else b["h0"]
    kw = dict(initial_state=h0, output_final_state=True, use_qk_l2norm_in_kernel=True, state_v_first=state_v_first)
    o, ht = gdngraph.chunk_gated_delta_rule(b["q"], b["k"], b["v"], b["g"], b["beta"], cu_seqlens=b["cu"], **kw)
    o_f, ht_f = fla_gdr(b["q"], b["k"], b["v"], b["g"], b["beta"], cu_seqlens=b["cu"].long(), **kw)
    if state_v_first:
        ht, ht_f = ht.transpose(-1, -2), ht_f.transpose(-1, -2)
    o_ref, ht_ref = recurrence(b["q"][0], b["k"][0], b["v"][0], b["g"][0], b["beta"][0], b["cu_list"], b["h0"],
                               l2norm=True)
    errs = dict(o_vs_fla=rel_l2(o, o_f), ht_vs_fla=rel_l2(ht, ht_f), o_ours=rel_l2(o[0], o_ref),
                o_fla=rel_l2(o_f[0], o_ref), ht_ours=rel_l2(ht, ht_ref), ht_fla=rel_l2(ht_f, ht_ref))
    print(f"lengths {lengths}: " + ", ".join(f"{k} {v:.2e}" for k, v in errs.items()))
    assert errs["o_vs_fla"] < 1e-2 and errs["ht_vs_fla"] < 1e-2, errs
    assert errs["o_ours"] <= SLACK * errs["o_fla"], errs
    assert errs["ht_ours"] <= SLACK * errs["ht_fla"], errs
