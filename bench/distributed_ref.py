# The reference of bench/distributed.ts: one rank of torch.distributed's Gloo all-reduce, driven exactly
# as m6's worker is. argv: {"rank", "world", "port"} as JSON. Prints "ready", then for each stdin line
# {"size": bytes, "iters": n} runs a barrier and n all-reduces of a float32 tensor of that many bytes and
# prints {"seconds": per-all-reduce}; "exit" (or end of input) ends it.
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
print('ready', flush=True)
tensors = {}
for line in iter(sys.stdin.readline, ''):
    if line.strip() == 'exit':
        break
    cmd = json.loads(line)
    t = tensors.setdefault(cmd['size'], torch.ones(cmd['size'] // 4, dtype=torch.float32))
    t.fill_(1)  # the sums double each time: start again from ones so they stay finite
    dist.barrier()
    t0 = time.perf_counter()
    for _ in range(cmd['iters']):
        dist.all_reduce(t)
    print(json.dumps({'seconds': (time.perf_counter() - t0) / cmd['iters']}), flush=True)
dist.destroy_process_group()
