"""Float64 oracle of the gated delta rule: the plain per-token recurrence of SPEC.md, and
random varlen GVA batches for the GPU tests."""
import torch
import torch.nn.functional as F


def gates_from_raw(a, b, A_log, dt_bias):
    """g = -exp(A_log) softplus(a + dt_bias) (log space), beta = sigmoid(b), in float64."""
    g = -torch.exp(A_log.double()) * F.softplus(a.double() + dt_bias.double())
    return g, torch.sigmoid(b.double())


def recurrence(q, k, v, g, beta, cu_seqlens, initial_state=None, scale=None, l2norm=False):
    """q, k [T, Hk, K]; v [T, Hv, V]; g (log space, None: no decay), beta [T, Hv];
    cu_seqlens a list [N+1]; initial_state [N, Hv, K, V] or None. Per sequence and value
    head h (key head h // (Hv/Hk)), state S [K, V]:
        S <- exp(g_t) S;  v' = beta_t (v_t - S^T k_t);  S <- S + k_t v'^T;  o_t = scale S^T q_t.
    Returns (o [T, Hv, V], final states [N, Hv, K, V]) in float64; rows past cu_seqlens[N] are 0."""
    q, k, v, beta = q.double(), k.double(), v.double(), beta.double()
    T, Hk, K = q.shape
    Hv, V = v.shape[1], v.shape[2]
    heads = torch.arange(Hv, device=q.device) // (Hv // Hk)
    if l2norm:
        q = q / torch.sqrt((q * q).sum(-1, keepdim=True) + 1e-6)
        k = k / torch.sqrt((k * k).sum(-1, keepdim=True) + 1e-6)
    scale = K ** -0.5 if scale is None else scale
    q, k = q[:, heads], k[:, heads]  # [T, Hv, K]
    decay = torch.ones(T, Hv, dtype=torch.float64, device=q.device) if g is None else torch.exp(g.double())
    n = len(cu_seqlens) - 1
    o = torch.zeros(T, Hv, V, dtype=torch.float64, device=q.device)
    final = torch.zeros(n, Hv, K, V, dtype=torch.float64, device=q.device)
    for i in range(n):
        S = torch.zeros(Hv, K, V, dtype=torch.float64, device=q.device)
        if initial_state is not None:
            S = initial_state[i].double().clone()
        for t in range(cu_seqlens[i], cu_seqlens[i + 1]):
            S *= decay[t][:, None, None]
            pred = torch.einsum("hkv,hk->hv", S, k[t])
            S += k[t][:, :, None] * (beta[t][:, None] * (v[t] - pred))[:, None, :]
            o[t] = scale * torch.einsum("hkv,hk->hv", S, q[t])
        final[i] = S
    return o, final


def rel_l2(x, ref):
    """||x - ref|| / ||ref|| in float64."""
    x, ref = x.double(), ref.double()
    return (torch.linalg.vector_norm(x - ref) / torch.linalg.vector_norm(ref).clamp_min(1e-30)).item()


def random_lengths(gen, n, total):
    """n lengths summing to total (some may be 0 or cross chunk borders)."""
    cuts = sorted(torch.randint(0, total + 1, (n - 1,), generator=gen).tolist())
    edges = [0] + cuts + [total]
    return [edges[i + 1] - edges[i] for i in range(n)]


def random_batch(lengths, Hk, Hv, K, V, device, seed=0, dtype=torch.bfloat16, raw=False):
    """A packed varlen batch in FLA's layout (B = 1): q, k [1, T, Hk, K], v [1, T, Hv, V],
    gates g fp32 / beta (or raw a, b, A_log, dt_bias), initial states [N, Hv, K, V] fp32,
    cu_seqlens int32 on the device (and as a list)."""
    gen = torch.Generator().manual_seed(seed)
    T, N = sum(lengths), len(lengths)

    def randn(*shape, std=1.0):
        return (torch.randn(*shape, generator=gen) * std).to(device)

    batch = dict(q=randn(1, T, Hk, K).to(dtype), k=randn(1, T, Hk, K).to(dtype), v=randn(1, T, Hv, V).to(dtype),
                 h0=randn(N, Hv, K, V, std=0.1), cu_list=[0] + [sum(lengths[:i + 1]) for i in range(N)])
    batch["cu"] = torch.tensor(batch["cu_list"], dtype=torch.int32, device=device)
    a, b = randn(1, T, Hv), randn(1, T, Hv)
    # mild decays (g in about (-2, 0)) so initial states still matter at the end of a sequence
    A_log = torch.log(0.02 + 0.5 * torch.rand(Hv, generator=gen)).to(device)
    dt_bias = randn(Hv, std=0.5)
    if raw:
        batch.update(a=a, b=b, A_log=A_log, dt_bias=dt_bias)
    g, beta = gates_from_raw(a, b, A_log, dt_bias)
    batch.update(g=g.float(), beta=beta.float())
    return batch


def assert_same(a, b, what=""):
    """Two runs of the same kernels: bitwise equal, tolerated max |a - b| <= 1e-6 max |b|
    (the C tests' rule for eager vs graph runs)."""
    assert a.shape == b.shape and a.dtype == b.dtype, what
    if torch.equal(a, b):
        return
    a, b = a.double(), b.double()
    bound = 1e-6 * b.abs().max().item()
    assert (a - b).abs().max().item() <= bound, f"{what}: max |a - b| {(a - b).abs().max().item():.3e} > {bound:.3e}"
