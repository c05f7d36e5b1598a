# The reference of bench/distributed.ts: one rank of torch.distributed's Gloo all-reduce on the same
# sizes, iterations and timing as m6's worker. argv: config JSON {rank, world, port, sizes, iters, warmup}.
# Prints {"seconds": [per-op seconds for each size]} from rank 0.
import json
import sys
import time
from datetime import timedelta

import torch
import torch.distributed as dist

cfg = json.loads(sys.argv[1])
torch.set_num_threads(1)
dist.init_process_group('gloo', init_method=f"tcp://127.0.0.1:{cfg['port']}", rank=cfg['rank'],
                        world_size=cfg['world'], timeout=timedelta(seconds=120))
seconds = []
for size, iters in zip(cfg['sizes'], cfg['iters']):
    t = torch.ones(size // 4, dtype=torch.float32)
    for _ in range(cfg['warmup']):
        dist.all_reduce(t)
    dist.barrier()
    t0 = time.perf_counter()
    for _ in range(iters):
        dist.all_reduce(t)
    seconds.append((time.perf_counter() - t0) / iters)
    t.fill_(1)
dist.barrier()
dist.destroy_process_group()
if cfg['rank'] == 0:
    print(json.dumps({'seconds': seconds}))
