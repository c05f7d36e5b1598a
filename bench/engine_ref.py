#!/usr/bin/python3
"""PyTorch reference for `npm run bench -- engine`: the same work as bench/engine.ts, op for op,
on Debian's python3-torch (the same libtorch), printing one JSON object. Called by the bench, once per
round of each part: cfg["part"] is "ops" (a) or "steps" (b, c); cfg["bf16"] false leaves bf16 out."""
import json, math, sys, time
import torch
import torch.nn.functional as F

cfg = json.loads(sys.argv[1])
torch.set_num_threads(cfg["threads"])
torch.manual_seed(0)
out = {"torchVersion": torch.__version__, "threads": torch.get_num_threads()}

def median(xs):
    xs = sorted(xs); n = len(xs)
    return xs[n // 2] if n % 2 else 0.5 * (xs[n // 2 - 1] + xs[n // 2])

# (a) per-op overhead on 1-element tensors
def op_loop(requires_grad):
    a = torch.ones(1, requires_grad=requires_grad); b = torch.ones(1)
    n = cfg["opIters"]
    best = float("inf")
    for _ in range(cfg["opRepeats"]):
        t = time.perf_counter()
        for _ in range(n):
            torch.add(a, b)
        best = min(best, (time.perf_counter() - t) / n)
    return best * 1e6
if cfg["part"] == "ops":
    out["opMicros"] = op_loop(False)
    out["opMicrosGrad"] = op_loop(True)
    print(json.dumps(out))
    sys.exit(0)

# (c) peak GEMM in each dtype
def gemm(dtype, n, iters):
    a = torch.randn(n, n).to(dtype); b = torch.randn(n, n).to(dtype)
    for _ in range(2): a @ b
    ts = []
    for _ in range(iters):
        t = time.perf_counter(); a @ b; ts.append(time.perf_counter() - t)
    return 2 * n ** 3 / median(ts) / 1e9
out["gemmGflopsFp32"] = gemm(torch.float32, cfg["gemmN"], cfg["gemmIters"])
out["gemmGflopsBf16"] = gemm(torch.bfloat16, cfg["gemmN"], cfg["gemmIters"]) if cfg["bf16"] else None

# (b) training step of the bare transformer (bench/bareTransformer.ts)
m = cfg["model"]; L, D, H, T, B, V = m["layers"], m["dim"], m["heads"], m["seq"], m["batch"], m["vocab"]
params = []
def p(shape, init):
    t = (torch.randn(*shape) * 0.02 if init == "normal" else torch.zeros(*shape) if init == "zeros" else torch.ones(*shape)).requires_grad_()
    params.append(t); return t
wte = p([V, D], "normal"); wpe = p([T, D], "normal")
blocks = [dict(ln1w=p([D], "ones"), ln1b=p([D], "zeros"), wqkv=p([3 * D, D], "normal"), bqkv=p([3 * D], "zeros"), wo=p([D, D], "normal"), bo=p([D], "zeros"),
               ln2w=p([D], "ones"), ln2b=p([D], "zeros"), w1=p([4 * D, D], "normal"), b1=p([4 * D], "zeros"), w2=p([D, 4 * D], "normal"), b2=p([D], "zeros")) for _ in range(L)]
lnfw = p([D], "ones"); lnfb = p([D], "zeros")
opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.1, foreach=True)

def sdpa(q, k, v, mask):
    # The composition m6 uses where libtorch lacks scaled_dot_product_attention (1.13).
    s = (q @ k.transpose(-2, -1)) * (1 / math.sqrt(q.shape[-1]))
    s = s.masked_fill(mask.logical_not(), float("-inf"))
    return F.softmax(s, -1) @ v

def loss_fn(tokens, targets):
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    x = F.embedding(tokens, wte) + wpe
    for b in blocks:
        h = F.layer_norm(x, [D], b["ln1w"], b["ln1b"])
        q, k, v = [t.view(B, T, H, D // H).transpose(1, 2) for t in F.linear(h, b["wqkv"], b["bqkv"]).split(D, -1)]
        y = sdpa(q, k, v, causal).transpose(1, 2).reshape(B, T, D)
        x = x + F.linear(y, b["wo"], b["bo"])
        x = x + F.linear(F.gelu(F.linear(F.layer_norm(x, [D], b["ln2w"], b["ln2b"]), b["w1"], b["b1"])), b["w2"], b["b2"])
    logits = F.linear(F.layer_norm(x, [D], lnfw, lnfb), wte)
    return F.cross_entropy(logits.view(B * T, V).float(), targets.view(B * T))

def step(tokens, targets, bf16):
    if bf16:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = loss_fn(tokens, targets)
    else:
        loss = loss_fn(tokens, targets)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.item()

tokens = torch.randint(0, V, (B, T)); targets = torch.randint(0, V, (B, T))
out["stepSecondsBf16"] = None
for key, bf16 in (("stepSecondsFp32", False), ("stepSecondsBf16", True))[: 2 if cfg["bf16"] else 1]:
    for _ in range(cfg["warmup"]): step(tokens, targets, bf16)
    ts = []
    for _ in range(cfg["steps"]):
        t = time.perf_counter(); step(tokens, targets, bf16); ts.append(time.perf_counter() - t)
    out[key] = median(ts)
print(json.dumps(out))
