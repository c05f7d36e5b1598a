// c10d process groups: a TCPStore rendezvous, then ProcessGroupGloo (CPU tensors) or ProcessGroupNCCL
// (CUDA tensors, where the libtorch has CUDA) — the engine under PyTorch's DDP, which libtorch contains.
//
// Threads. Every rank must issue collectives in the same order, so they are issued in call order.
// Gloo: the main thread issues each collective (ProcessGroupGloo only queues it for its own worker
// threads) and the work's future, completed on a Gloo thread, hands the job back to the event loop
// through a threadsafe function, which resolves or rejects the Promise there: the same thread hops as
// torch.distributed's all_reduce + wait. A job that needs a first exchange (allToAll learning its output
// splits) holds the jobs called after it until its second collective is issued. NCCL: a communication
// thread per group issues and waits jobs in order (an NCCL future completes on the stream, not on the
// CPU). That thread also runs what blocks for up to the timeout: the rendezvous, the Gloo mesh
// connection, and teardown. The tensor table is only touched on the main thread.
//
// Errors. A c10::Error or a Gloo exception becomes a rejected Promise whose message names the collective,
// the tensor, this rank, the world size and the peers, plus c10d's own text ("Connection reset by
// peer", "Timed out waiting 5000ms ..."). Gloo bounds every operation by the group's timeout (its
// context's), m6 bounds the rendezvous and NCCL waits, so a lost peer never hangs a caller. After a
// collective fails, the ranks' streams are out of step: the group refuses further collectives instead of
// returning wrong sums.
#define M6_COMPAT_C10D
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <thread>
#include <unordered_set>
#include "common.h"
#if defined(M6_WITH_GLOO)
#include <torch/csrc/autograd/custom_function.h>
#include <torch/csrc/autograd/utils/lambda_post_hook.h>
#endif

namespace m6 {
namespace {

#if defined(M6_WITH_GLOO)

using Clock = std::chrono::steady_clock;
using Ms = std::chrono::milliseconds;

enum class Kind { Init, AllReduce, Broadcast, AllGather, AllToAll, Barrier, Destroy };

struct Reducer;

struct Job {
  Kind kind;
  std::string what;  // "allReduce(sum) of a [4] float32 tensor": the head of every message about this job
  napi_deferred deferred = nullptr;
  at::Tensor tensor;  // the input (reduced / broadcast in place)
  std::string reduce;  // sum | avg | max | min | product
  int64_t root = 0;
  std::vector<int64_t> inSplits, outSplits;  // allToAll; outSplits empty = learn them from the peers
  std::vector<at::Tensor> outputs;  // allGather's world-size outputs; allToAll's one output
  std::string error;
  bool timedOut = false;
  int phase = 0;  // allToAll on Gloo without outSplits: 1 = the split sizes are being exchanged
  at::Tensor counts;  // phase 1's received split sizes
  Clock::time_point started;
  double ms = 0;  // how long the job ran, for messages
  std::promise<void>* done = nullptr;  // an in-graph allToAll run on the group's thread (NCCL): its caller waits here
  Reducer* reducer = nullptr;  // a gradient bucket's all-reduce: it has no Promise of its own; its reducer settles
};

struct Group {
  uint32_t id = 0;
  std::string backend;  // gloo | nccl
  int rank = 0, size = 1;
  std::string addr;
  int port = 0;
  Ms timeout{0};
  // Owned by the communication thread once it starts:
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<m6compat::C10dBackend> pg;
  std::thread thread;
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Job*> queue;  // guarded by mu
  bool busy = false;       // guarded by mu: the thread is running a job
  bool exiting = false;    // guarded by mu: the environment is being torn down; drop everything
  // Main thread only:
  napi_threadsafe_function tsfn = nullptr;
  int pending = 0;         // jobs handed to the thread and not yet settled; the tsfn holds the loop while > 0
  bool ready = false;      // init resolved
  bool closed = false;     // destroy() called, or init failed
  std::string failed;      // the first collective failure: the group refuses further collectives
  Job* blocking = nullptr; // an allToAll still learning its splits (Gloo): later jobs wait in `held`
  std::deque<Job*> held;
};

std::atomic<bool> envExiting{false};
void post(Group* g, Job* j);

std::vector<Group*> groups(1, nullptr);  // id 0 = none
bool cleanupHookAdded = false;

std::string peersOf(const Group& g) {
  std::string s;
  for (int r = 0; r < g.size; r++) {
    if (r == g.rank) continue;
    if (!s.empty()) s += ", ";
    s += std::to_string(r);
  }
  return s.empty() ? "none" : s;
}

std::string where(const Group& g) {
  return "rank " + std::to_string(g.rank) + " of " + std::to_string(g.size) + " (peers " + peersOf(g) + "; " + g.backend +
         ", rendezvous " + g.addr + ":" + std::to_string(g.port) + ")";
}

bool looksLikeTimeout(const std::string& m) {
  return m.find("imed out") != std::string::npos || m.find("imeout") != std::string::npos;
}

bool isLoopback(const std::string& a) { return a == "localhost" || a.rfind("127.", 0) == 0 || a == "::1"; }

// --- the communication thread ------------------------------------------------------------------

void waitFor(Group& g, const c10::intrusive_ptr<m6compat::C10dWork>& work) {
  if (g.backend == "nccl") {
    // NCCL's wait() only orders the current CUDA stream after the work; the Promise means "done", so poll
    // completion (isCompleted also surfaces NCCL's asynchronous errors) up to the timeout.
    auto deadline = Clock::now() + g.timeout;
    while (!work->isCompleted()) {
      if (Clock::now() > deadline) throw std::runtime_error("timed out after " + std::to_string(g.timeout.count()) + " ms waiting for NCCL");
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
    work->wait();
    return;
  }
  // Not reached for Gloo collectives today (the main thread issues them); Gloo fails an operation itself
  // after the group's timeout, and this bound is a backstop.
  work->wait(g.timeout + Ms(2000));
}

// The rendezvous, bounded by the group's timeout as a whole. The TCPStore's own wait for workers is not
// used: m6 counts arrivals itself so that a timeout can say which ranks never came.
void rendezvous(Group& g) {
  auto deadline = Clock::now() + g.timeout;
  auto left = [&] { return std::max(Ms(1), std::chrono::duration_cast<Ms>(deadline - Clock::now())); };
  c10d::TCPStoreOptions so;
  so.port = static_cast<std::uint16_t>(g.port);
  so.isServer = g.rank == 0;
  so.numWorkers = static_cast<std::size_t>(g.size);
  so.waitWorkers = false;
  c10::intrusive_ptr<c10d::TCPStore> tcp;
  for (;;) {
    // A client that starts before rank 0 listens is refused; libtorch 1.13 gives up at once when less than
    // its 1 s retry delay is left, so retry here until the deadline.
    so.timeout = left();
    try {
      tcp = c10::make_intrusive<c10d::TCPStore>(g.addr, so);
      break;
    } catch (const std::exception& e) {
      if (so.isServer)
        throw std::runtime_error("rank 0 could not serve the rendezvous on port " + std::to_string(g.port) + " (is it in use?): " + e.what());
      if (Clock::now() + Ms(100) >= deadline)
        throw std::runtime_error("timed out after " + std::to_string(g.timeout.count()) + " ms trying to reach the rendezvous that rank 0 serves at " +
                                 g.addr + ":" + std::to_string(g.port) + ": " + e.what());
      std::this_thread::sleep_for(Ms(100));
    }
  }
  tcp->setTimeout(g.timeout);
  g.store = c10::make_intrusive<c10d::PrefixStore>("m6", tcp);
  g.store->set("arrived/" + std::to_string(g.rank), std::vector<uint8_t>{1});
  for (int64_t n = g.store->add("arrived", 1); n < g.size; n = g.store->add("arrived", 0)) {
    if (Clock::now() >= deadline) {
      std::string missing;
      for (int r = 0; r < g.size; r++)
        if (!g.store->check({"arrived/" + std::to_string(r)})) missing += (missing.empty() ? "" : ", ") + std::to_string(r);
      throw std::runtime_error("timed out after " + std::to_string(g.timeout.count()) + " ms waiting for rank(s) " + missing + " (" +
                               std::to_string(n) + " of " + std::to_string(g.size) + " arrived at the rendezvous)");
    }
    std::this_thread::sleep_for(Ms(5));
  }
}

void initGroup(Group& g) {
  rendezvous(g);
#if defined(M6_WITH_NCCL)
  if (g.backend == "nccl") {
    auto opts = c10d::ProcessGroupNCCL::Options::create();
    opts->timeout = g.timeout;
    g.pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(g.store, g.rank, g.size, opts);
    return;
  }
#endif
  auto opts = c10d::ProcessGroupGloo::Options::create(g.timeout);
  // Which interface Gloo binds: GLOO_SOCKET_IFNAME as torch.distributed reads it; loopback when the whole
  // group is on this host; else the address this host's name resolves to (torch.distributed's default).
  const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
  if (ifname && *ifname) {
    std::string first(ifname);
    first = first.substr(0, first.find(','));
    opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(first));
  } else if (isLoopback(g.addr)) {
    opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
  } else {
    opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
  }
  opts->threads = static_cast<int>(opts->devices.size()) * 2;  // torch.distributed's choice
  g.pg = c10::make_intrusive<c10d::ProcessGroupGloo>(g.store, g.rank, g.size, opts);
}

void runJob(Group& g, Job& j) {
  at::NoGradGuard noGrad;  // collectives are not recorded by autograd (as in torch.distributed)
  switch (j.kind) {
    case Kind::Init: initGroup(g); return;
    case Kind::Destroy: return;
    case Kind::AllReduce: {
      c10d::AllreduceOptions o;
      o.reduceOp = j.reduce == "max" ? c10d::ReduceOp::MAX : j.reduce == "min" ? c10d::ReduceOp::MIN
                 : j.reduce == "product" ? c10d::ReduceOp::PRODUCT : c10d::ReduceOp::SUM;
      o.timeout = g.timeout;
      std::vector<at::Tensor> ts{j.tensor};
      waitFor(g, g.pg->allreduce(ts, o));
      if (j.reduce == "avg") j.tensor.div_(g.size);  // Gloo has no AVG; torch.distributed users divide too
      return;
    }
    case Kind::Broadcast: {
      c10d::BroadcastOptions o;
      o.rootRank = j.root;
      o.timeout = g.timeout;
      std::vector<at::Tensor> ts{j.tensor};
      waitFor(g, g.pg->broadcast(ts, o));
      return;
    }
    case Kind::AllGather: {
      c10d::AllgatherOptions o;
      o.timeout = g.timeout;
      std::vector<at::Tensor> in{j.tensor};
      std::vector<std::vector<at::Tensor>> out{j.outputs};
      waitFor(g, g.pg->allgather(out, in, o));
      return;
    }
    case Kind::AllToAll: {
      c10d::AllToAllOptions o;
      o.timeout = g.timeout;
      if (j.outSplits.empty()) {
        // Learn how many rows each peer sends: one all-to-all of the split sizes (one int64 per rank).
        auto counts = at::tensor(j.inSplits, at::TensorOptions().dtype(at::kLong)).to(j.tensor.device());
        auto got = at::empty_like(counts);
        std::vector<int64_t> equal;
        waitFor(g, g.pg->alltoall_base(got, counts, equal, equal, o));
        got = got.cpu();
        j.outSplits.assign(got.data_ptr<int64_t>(), got.data_ptr<int64_t>() + g.size);
      }
      int64_t rows = 0;
      for (int64_t s : j.outSplits) rows += s;
      auto shape = j.tensor.sizes().vec();
      shape[0] = rows;
      at::Tensor out = at::empty(shape, j.tensor.options());
      // alltoall_base takes the splits by non-const reference and Gloo moves from them: pass copies.
      std::vector<int64_t> outSplits = j.outSplits, inSplits = j.inSplits;
      waitFor(g, g.pg->alltoall_base(out, j.tensor, outSplits, inSplits, o));
      j.outputs = {out};
      return;
    }
    case Kind::Barrier: {
      c10d::BarrierOptions o;
      o.timeout = g.timeout;
      waitFor(g, g.pg->barrier(o));
      return;
    }
  }
}

void threadMain(Group* g) {
  std::string failedBefore;  // the first failed job, on this thread
  for (;;) {
    Job* j;
    {
      std::unique_lock<std::mutex> lock(g->mu);
      g->cv.wait(lock, [&] { return !g->queue.empty() || g->exiting; });
      if (g->exiting) return;
      j = g->queue.front();
      g->queue.pop_front();
      g->busy = true;
    }
    auto t0 = Clock::now();
    try {
      // After a failure the ranks' streams are out of step: a collective queued behind it must not run
      // (it could pair with a different collective of a peer and return wrong values).
      if (!failedBefore.empty() && j->kind != Kind::Destroy) throw std::runtime_error("not run: an earlier collective failed (" + failedBefore + ")");
      runJob(*g, *j);
    } catch (const c10::Error& e) {
      j->error = e.what_without_backtrace();
    } catch (const std::exception& e) {
      j->error = e.what();
    } catch (...) {
      j->error = "unknown native error";
    }
    j->ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    if (!j->error.empty() && failedBefore.empty()) failedBefore = j->what + ": " + j->error;
    bool last = j->kind == Kind::Destroy || (j->kind == Kind::Init && !j->error.empty());
    if (last) {
      // Tear down here, on the thread that used them: the Gloo threads join, sockets close.
      g->pg.reset();
      g->store.reset();
    }
    {
      std::lock_guard<std::mutex> lock(g->mu);
      g->busy = false;
      if (g->exiting && !j->done) return;  // the environment is being torn down: nobody is left to settle the Promise
    }
    if (j->done) { j->done->set_value(); continue; }  // its caller (blocked in allToAllNow) owns the job
    post(g, j);
    if (last) return;
  }
}

// Hands a finished job (or phase) back to the event loop. Any thread.
void post(Group* g, Job* j) {
  if (envExiting.load()) return;  // the environment is going away: nobody is left to settle the Promise
  napi_call_threadsafe_function(g->tsfn, j, napi_tsfn_blocking);
}

// Gloo: issues the job's collective from the main thread; its future posts the job when done (on a Gloo
// thread, or here if it is already done). Throws when c10d refuses the call. Gloo bounds every
// operation by the group's timeout, so the future always completes.
void issueGloo(Group& g, Job& j) {
  c10::intrusive_ptr<m6compat::C10dWork> work;
  switch (j.kind) {
    case Kind::AllReduce: {
      c10d::AllreduceOptions o;
      o.reduceOp = j.reduce == "max" ? c10d::ReduceOp::MAX : j.reduce == "min" ? c10d::ReduceOp::MIN
                 : j.reduce == "product" ? c10d::ReduceOp::PRODUCT : c10d::ReduceOp::SUM;
      std::vector<at::Tensor> ts{j.tensor};
      work = g.pg->allreduce(ts, o);
      break;
    }
    case Kind::Broadcast: {
      c10d::BroadcastOptions o;
      o.rootRank = j.root;
      std::vector<at::Tensor> ts{j.tensor};
      work = g.pg->broadcast(ts, o);
      break;
    }
    case Kind::AllGather: {
      std::vector<at::Tensor> in{j.tensor};
      std::vector<std::vector<at::Tensor>> out{j.outputs};
      work = g.pg->allgather(out, in, c10d::AllgatherOptions());
      break;
    }
    case Kind::AllToAll: {
      std::vector<int64_t> none;
      if (j.outSplits.empty()) {
        // Phase 1: learn how many rows each peer sends (one int64 per rank).
        j.phase = 1;
        at::Tensor counts = at::tensor(j.inSplits, at::TensorOptions().dtype(at::kLong));
        j.counts = at::empty_like(counts);
        work = g.pg->alltoall_base(j.counts, counts, none, none, c10d::AllToAllOptions());
        break;
      }
      j.phase = 2;
      int64_t rows = 0;
      for (int64_t x : j.outSplits) rows += x;
      auto shape = j.tensor.sizes().vec();
      shape[0] = rows;
      j.outputs = {at::empty(shape, j.tensor.options())};
      // alltoall_base takes the splits by non-const reference and Gloo moves from them: pass copies.
      std::vector<int64_t> outSplits = j.outSplits, inSplits = j.inSplits;
      work = g.pg->alltoall_base(j.outputs[0], j.tensor, outSplits, inSplits, c10d::AllToAllOptions());
      break;
    }
    case Kind::Barrier: work = g.pg->barrier(c10d::BarrierOptions()); break;
    default: throw std::logic_error("issueGloo: not a collective");
  }
  Group* gp = &g;
  Job* jp = &j;
  work->getFuture()->addCallback([gp, jp](c10::ivalue::Future& f) {
    if (f.hasError()) {
      jp->error = f.tryRetrieveErrorMessage();
    } else if (jp->kind == Kind::AllReduce && jp->reduce == "avg") {
      try {
        at::NoGradGuard noGrad;
        jp->tensor.div_(gp->size);  // Gloo has no AVG; torch.distributed users divide too
      } catch (const std::exception& e) {
        jp->error = e.what();
      }
    }
    jp->ms = std::chrono::duration<double, std::milli>(Clock::now() - jp->started).count();
    post(gp, jp);
  });
}

// --- back on the main thread -------------------------------------------------------------------

napi_value distError(napi_env env, const Group& g, const Job& j, const std::string& message) {
  bool timeout = j.timedOut || looksLikeTimeout(message);
  napi_value msg, code, err;
  napi_create_string_utf8(env, message.c_str(), message.size(), &msg);
  napi_create_string_utf8(env, timeout ? "ERR_M6_DIST_TIMEOUT" : "ERR_M6_DIST", NAPI_AUTO_LENGTH, &code);
  napi_create_error(env, code, msg, &err);
  static const char* names[] = {"init", "allReduce", "broadcast", "allGather", "allToAll", "barrier", "destroy"};
  setNamed(env, err, "collective", string(env, names[static_cast<int>(j.kind)]));
  setNamed(env, err, "rank", number(env, g.rank));
  setNamed(env, err, "worldSize", number(env, g.size));
  return err;
}

void releaseGroup(napi_env env, Group* g) {
  if (g->thread.joinable()) g->thread.join();
  napi_release_threadsafe_function(g->tsfn, napi_tsfn_release);  // its finalizer deletes the group
}

void finalizeGroup(napi_env, void* data, void*) {
  auto* g = static_cast<Group*>(data);
  if (g->id < groups.size() && groups[g->id] == g) groups[g->id] = nullptr;
  delete g;
}

void dispatch(napi_env env, Group& g, Job* j);
void finish(napi_env env, Group* g, Job* raw);

void settle(napi_env env, napi_value, void* context, void* data) {
  auto* g = static_cast<Group*>(context);
  auto* j = static_cast<Job*>(data);
  if (env == nullptr) { delete j; return; }  // the environment is being torn down
  if (j->phase == 1) {
    // allToAll's split sizes arrived: issue the exchange itself, then the jobs called after it.
    if (g->blocking == j) g->blocking = nullptr;
    if (j->error.empty()) {
      try {
        const int64_t* c = j->counts.data_ptr<int64_t>();
        j->outSplits.assign(c, c + g->size);
        issueGloo(*g, *j);
      } catch (const c10::Error& e) {
        j->error = e.what_without_backtrace();
      } catch (const std::exception& e) {
        j->error = e.what();
      }
    }
    if (!j->error.empty()) finish(env, g, j);
    while (!g->blocking && !g->held.empty()) {
      Job* next = g->held.front();
      g->held.pop_front();
      dispatch(env, *g, next);
    }
    return;
  }
  finish(env, g, j);
}

void reducerJobDone(napi_env env, Group* g, Job* raw);

// Settles a job's Promise (main thread).
void finish(napi_env env, Group* g, Job* raw) {
  if (raw->reducer) { reducerJobDone(env, g, raw); return; }
  std::unique_ptr<Job> j(raw);
  if (--g->pending == 0) napi_unref_threadsafe_function(env, g->tsfn);
  napi_value result = nullptr;
  std::string error;
  if (!j->error.empty()) {
    char ms[32];
    std::snprintf(ms, sizeof ms, "%.0f", j->ms);
    error = "m6 dist: " + j->what + " failed on " + where(*g) + " after " + ms + " ms: " + j->error;
    if (j->kind == Kind::Init) {
      g->closed = true;
      if (looksLikeTimeout(j->error))
        error += " (not every rank arrived within timeoutMs=" + std::to_string(g->timeout.count()) +
                 "; check that worldSize processes are started with ranks 0.." + std::to_string(g->size - 1) +
                 " and the same masterAddr/masterPort)";
    } else if (j->kind != Kind::Destroy && g->failed.empty()) {
      g->failed = j->what + ": " + j->error;
    }
  } else {
    try {
      switch (j->kind) {
        case Kind::Init: g->ready = true; result = undefined(env); break;
        case Kind::AllGather: {
          result = array(env, j->outputs.size());
          for (size_t i = 0; i < j->outputs.size(); i++)
            setElement(env, result, static_cast<uint32_t>(i), number(env, insert(env, j->outputs[i])));
          break;
        }
        case Kind::AllToAll: {
          result = object(env);
          setNamed(env, result, "output", number(env, insert(env, j->outputs.at(0))));
          napi_value splits = array(env, j->outSplits.size());
          for (size_t i = 0; i < j->outSplits.size(); i++)
            setElement(env, splits, static_cast<uint32_t>(i), number(env, static_cast<double>(j->outSplits[i])));
          setNamed(env, result, "outputSplits", splits);
          break;
        }
        default: result = undefined(env);
      }
    } catch (const std::exception& e) {
      error = std::string("m6 dist: ") + j->what + ": " + e.what();
    }
  }
  if (error.empty()) napi_resolve_deferred(env, j->deferred, result);
  else napi_reject_deferred(env, j->deferred, distError(env, *g, *j, error));
  if (j->kind == Kind::Destroy || (j->kind == Kind::Init && !j->error.empty())) releaseGroup(env, g);
}

// Process exit: a thread that is idle is stopped and joined; one still inside a collective (process.exit()
// mid-collective) is left to die with the process. Groups are not torn down here: their peers see the
// sockets close, which is what they would see if this process were killed.
void cleanupHook(void*) {
  envExiting.store(true);
  for (Group* g : groups) {
    if (!g || !g->thread.joinable()) continue;
    bool busy;
    {
      std::lock_guard<std::mutex> lock(g->mu);
      g->exiting = true;
      busy = g->busy;
    }
    g->cv.notify_all();
    if (busy) g->thread.detach(); else g->thread.join();
  }
}

Group& groupOf(napi_env env, napi_value v) {
  uint32_t id;
  if (napi_get_value_uint32(env, v, &id) != napi_ok || id == 0 || id >= groups.size() || !groups[id])
    throw JsError("m6 dist: not a live process group (it was destroyed, or its init failed)");
  Group& g = *groups[id];
  if (g.closed) throw JsError("m6 dist: the process group of " + where(g) + " was destroyed");
  return g;
}

// Starts a job whose Promise exists: held behind a blocking allToAll, issued here (Gloo collectives), or
// handed to the group's thread (init, destroy, every NCCL job).
void dispatch(napi_env env, Group& g, Job* j) {
  if (g.blocking) { g.held.push_back(j); return; }
  j->started = Clock::now();
  bool onThread = g.backend != "gloo" || j->kind == Kind::Init || j->kind == Kind::Destroy;
  if (!onThread) {
    if (!g.failed.empty()) {
      j->error = "not run: an earlier collective failed (" + g.failed + ")";
      finish(env, &g, j);
      return;
    }
    try {
      issueGloo(g, *j);
      if (j->phase == 1) g.blocking = j;
    } catch (const c10::Error& e) {
      j->error = e.what_without_backtrace();
      finish(env, &g, j);
    } catch (const std::exception& e) {
      j->error = e.what();
      finish(env, &g, j);
    }
    return;
  }
  {
    std::lock_guard<std::mutex> lock(g.mu);
    g.queue.push_back(j);
  }
  g.cv.notify_one();
}

// Creates the job's Promise and starts it.
napi_value enqueue(napi_env env, Group& g, std::unique_ptr<Job> j) {
  napi_value promise;
  napi_create_promise(env, &j->deferred, &promise);
  if (g.pending++ == 0) napi_ref_threadsafe_function(env, g.tsfn);
  dispatch(env, g, j.release());
  return promise;
}

Group& collectiveGroup(napi_env env, napi_value v) {
  Group& g = groupOf(env, v);
  if (!g.ready) throw JsError("m6 dist: the process group of " + where(g) + " is not initialised yet (await init())");
  if (!g.failed.empty())
    throw JsError("m6 dist: the process group of " + where(g) + " is unusable since an earlier collective failed (" +
                  g.failed + "); destroy it and start the group again");
  return g;
}

const at::Tensor& denseTensor(napi_env env, const Group& g, napi_value v, const char* what) {
  const at::Tensor& t = get(env, v);
  if (t.layout() != at::kStrided || !t.is_contiguous())
    throw JsError(std::string("m6 dist: ") + what + " needs a dense contiguous tensor, got a " + (t.is_contiguous() ? "sparse " : "non-contiguous ") +
                  describe(t) + " one (call contiguous() first)");
  bool cuda = t.device().is_cuda();
  if (g.backend == "gloo" && !t.device().is_cpu())
    throw JsError(std::string("m6 dist: ") + what + " on the gloo backend needs a CPU tensor, got " + describe(t) + " (use backend 'nccl' for CUDA tensors)");
  if (g.backend == "nccl" && !cuda)
    throw JsError(std::string("m6 dist: ") + what + " on the nccl backend needs a CUDA tensor, got " + describe(t));
  return t;
}

std::string tensorWhat(const std::string& op, const at::Tensor& t) { return op + " of a " + describe(t) + " tensor"; }

// --- exports --------------------------------------------------------------------------------

// initProcessGroup(backend, rank, worldSize, masterAddr, masterPort, timeoutMs) -> Promise<groupId>
napi_value InitProcessGroup(napi_env env, napi_callback_info info) {
  M6_TRY
  auto a = args(env, info, 6);
  if (a.size() < 6) throw JsError("initProcessGroup(backend, rank, worldSize, masterAddr, masterPort, timeoutMs)");
  auto g = std::make_unique<Group>();
  g->backend = getString(env, a[0], "backend");
  g->rank = static_cast<int>(getInt(env, a[1], "rank"));
  g->size = static_cast<int>(getInt(env, a[2], "worldSize"));
  g->addr = getString(env, a[3], "masterAddr");
  g->port = static_cast<int>(getInt(env, a[4], "masterPort"));
  g->timeout = Ms(getInt(env, a[5], "timeoutMs"));
  if (g->backend != "gloo" && g->backend != "nccl") throw JsError("m6 dist: backend must be 'gloo' or 'nccl', got '" + g->backend + "'");
#if !defined(M6_WITH_NCCL)
  if (g->backend == "nccl")
    throw JsError(std::string("m6 dist: backend 'nccl' needs a libtorch with CUDA and NCCL (this addon was built against libtorch ") + TORCH_VERSION +
                  " without them); use 'gloo', or rebuild against a CUDA libtorch (LIBTORCH=...) with npm run build:native");
#endif
  if (g->size < 1) throw JsError("m6 dist: worldSize must be ≥ 1, got " + std::to_string(g->size));
  if (g->rank < 0 || g->rank >= g->size)
    throw JsError("m6 dist: rank must be in 0.." + std::to_string(g->size - 1) + " for worldSize " + std::to_string(g->size) + ", got " + std::to_string(g->rank));
  if (g->port < 1 || g->port > 65535) throw JsError("m6 dist: masterPort must be in 1..65535, got " + std::to_string(g->port));
  if (g->timeout.count() < 1) throw JsError("m6 dist: timeoutMs must be ≥ 1, got " + std::to_string(g->timeout.count()));
  if (!cleanupHookAdded) {
    napi_add_env_cleanup_hook(env, cleanupHook, nullptr);
    cleanupHookAdded = true;
  }
  g->id = static_cast<uint32_t>(groups.size());
  Group* raw = g.get();
  napi_value name;
  napi_create_string_utf8(env, "m6.dist", NAPI_AUTO_LENGTH, &name);
  if (napi_create_threadsafe_function(env, nullptr, nullptr, name, 0, 1, raw, finalizeGroup, raw, settle, &raw->tsfn) != napi_ok)
    throw JsError("m6 dist: could not create the group's threadsafe function");
  napi_unref_threadsafe_function(env, raw->tsfn);
  groups.push_back(g.release());
  raw->thread = std::thread(threadMain, raw);
  auto j = std::make_unique<Job>();
  j->kind = Kind::Init;
  j->what = "init";
  napi_value promise = enqueue(env, *raw, std::move(j));
  // The Promise resolves to nothing; the id is known now. JS awaits the promise before using the id.
  napi_value r = array(env, 2);
  setElement(env, r, 0, number(env, raw->id));
  setElement(env, r, 1, promise);
  return r;
  M6_CATCH(env)
}

// allReduce(group, tensor, op) -> Promise<void>; in place.
napi_value AllReduce(napi_env env, napi_callback_info info) {
  M6_TRY
  auto a = args(env, info, 3);
  if (a.size() < 3) throw JsError("allReduce(group, tensor, op)");
  Group& g = collectiveGroup(env, a[0]);
  auto j = std::make_unique<Job>();
  j->kind = Kind::AllReduce;
  j->reduce = getString(env, a[2], "op");
  if (j->reduce != "sum" && j->reduce != "avg" && j->reduce != "max" && j->reduce != "min" && j->reduce != "product")
    throw JsError("m6 dist: allReduce op must be 'sum', 'avg', 'max', 'min' or 'product', got '" + j->reduce + "'");
  j->tensor = denseTensor(env, g, a[1], "allReduce");
  if (j->reduce == "avg" && !at::isFloatingType(j->tensor.scalar_type()))
    throw JsError("m6 dist: allReduce(avg) needs a floating-point tensor, got " + describe(j->tensor) + " (use 'sum' and divide)");
  j->what = tensorWhat("allReduce(" + j->reduce + ")", j->tensor);
  return enqueue(env, g, std::move(j));
  M6_CATCH(env)
}

// broadcast(group, tensor, root) -> Promise<void>; in place.
napi_value Broadcast(napi_env env, napi_callback_info info) {
  M6_TRY
  auto a = args(env, info, 3);
  if (a.size() < 3) throw JsError("broadcast(group, tensor, root)");
  Group& g = collectiveGroup(env, a[0]);
  auto j = std::make_unique<Job>();
  j->kind = Kind::Broadcast;
  j->root = getInt(env, a[2], "root");
  if (j->root < 0 || j->root >= g.size)
    throw JsError("m6 dist: broadcast root must be a rank in 0.." + std::to_string(g.size - 1) + ", got " + std::to_string(j->root));
  j->tensor = denseTensor(env, g, a[1], "broadcast");
  j->what = tensorWhat("broadcast(from rank " + std::to_string(j->root) + ")", j->tensor);
  return enqueue(env, g, std::move(j));
  M6_CATCH(env)
}

// allGather(group, tensor) -> Promise<tensorId[]>: one tensor per rank, in rank order.
napi_value AllGather(napi_env env, napi_callback_info info) {
  M6_TRY
  auto a = args(env, info, 2);
  if (a.size() < 2) throw JsError("allGather(group, tensor)");
  Group& g = collectiveGroup(env, a[0]);
  auto j = std::make_unique<Job>();
  j->kind = Kind::AllGather;
  j->tensor = denseTensor(env, g, a[1], "allGather");
  for (int r = 0; r < g.size; r++) j->outputs.push_back(at::empty_like(j->tensor, at::MemoryFormat::Contiguous));
  j->what = tensorWhat("allGather", j->tensor);
  return enqueue(env, g, std::move(j));
  M6_CATCH(env)
}

std::vector<int64_t> splitsArg(napi_env env, napi_value v, const Group& g, const char* what) {
  auto t = typeOf(env, v);
  if (t == napi_null || t == napi_undefined) return {};
  if (!isArray(env, v)) throw JsError(std::string("m6 dist: allToAll ") + what + " must be an array of " + std::to_string(g.size) + " row counts");
  auto s = getIntList(env, v, what);
  if (static_cast<int>(s.size()) != g.size)
    throw JsError(std::string("m6 dist: allToAll ") + what + " has " + std::to_string(s.size()) + " entries; it needs one per rank (" + std::to_string(g.size) + ")");
  for (int64_t x : s)
    if (x < 0) throw JsError(std::string("m6 dist: allToAll ") + what + " must be ≥ 0, got " + std::to_string(x));
  return s;
}

// allToAll(group, tensor, inputSplits | null, outputSplits | null) -> Promise<{ output, outputSplits }>.
// Rows [sum(in[0..r)), +in[r]) of the input go to rank r; the output holds the rows from each rank in rank
// order. Splits omitted on the input = equal parts; omitted on the output = learnt from the peers first.
napi_value AllToAll(napi_env env, napi_callback_info info) {
  M6_TRY
  auto a = args(env, info, 4);
  if (a.size() < 2) throw JsError("allToAll(group, tensor, inputSplits?, outputSplits?)");
  Group& g = collectiveGroup(env, a[0]);
  auto j = std::make_unique<Job>();
  j->kind = Kind::AllToAll;
  j->tensor = denseTensor(env, g, a[1], "allToAll");
  if (j->tensor.dim() == 0) throw JsError("m6 dist: allToAll needs a tensor with at least one dimension (rows to split), got a scalar");
  int64_t rows = j->tensor.size(0);
  j->inSplits = a.size() > 2 ? splitsArg(env, a[2], g, "inputSplits") : std::vector<int64_t>{};
  j->outSplits = a.size() > 3 ? splitsArg(env, a[3], g, "outputSplits") : std::vector<int64_t>{};
  if (j->inSplits.empty()) {
    if (rows % g.size != 0)
      throw JsError("m6 dist: allToAll without inputSplits splits the " + std::to_string(rows) + " rows of " + describe(j->tensor) +
                    " equally over " + std::to_string(g.size) + " ranks, which does not divide them; pass inputSplits");
    j->inSplits.assign(g.size, rows / g.size);
  }
  int64_t sum = 0;
  for (int64_t x : j->inSplits) sum += x;
  if (sum != rows)
    throw JsError("m6 dist: allToAll inputSplits sum to " + std::to_string(sum) + " rows, but the input " + describe(j->tensor) + " has " + std::to_string(rows));
  j->what = tensorWhat("allToAll", j->tensor);
  return enqueue(env, g, std::move(j));
  M6_CATCH(env)
}

// --- the in-graph all-to-all (expert parallelism) ------------------------------------------------
// An expert-parallel MoE layer sends tokens to their experts' ranks inside the model's forward, and its
// backward must send the gradients back the same way, inside libtorch's backward (one native call, out of
// JS's reach). So this all-to-all is synchronous, and an autograd Function whose backward is the reverse
// all-to-all (DeepSpeed-MoE's _AllToAll). Every rank runs the same layers in the same order, forward and
// backward, so the calls pair up. Gloo: issued from the calling thread (c10d assigns each collective its
// tag there, in call order) and waited; NCCL: run on the group's thread after the jobs queued before it.

std::string failedMessage(const Group& g, const std::string& what, const std::string& error) {
  return "m6 dist: " + what + " failed on " + where(g) + ": " + error;
}

Group& liveGroup(int64_t id, const char* when) {
  if (id <= 0 || id >= static_cast<int64_t>(groups.size()) || !groups[id] || groups[id]->closed || !groups[id]->ready)
    throw std::runtime_error(std::string("m6 dist: in-graph allToAll ") + when + ": its process group was destroyed or never initialised");
  return *groups[id];
}

at::Tensor allToAllNow(Group& g, const at::Tensor& x, const std::vector<int64_t>& inSplits, const std::vector<int64_t>& outSplits) {
  std::string what = "in-graph allToAll of a " + describe(x) + " tensor";
  if (!g.failed.empty()) throw std::runtime_error("m6 dist: " + what + " on " + where(g) + ": an earlier collective failed (" + g.failed + ")");
  if (g.blocking) throw std::runtime_error("m6 dist: " + what + " on " + where(g) + ": an asynchronous allToAll is still learning its splits; await it before the forward");
  at::NoGradGuard noGrad;
  int64_t rows = 0;
  for (int64_t s : outSplits) rows += s;
  auto shape = x.sizes().vec();
  shape[0] = rows;
  at::Tensor in = x.contiguous(), out = at::empty(shape, x.options());
  try {
    if (g.backend == "gloo") {
      // Gloo (as in libtorch 1.13) has no bfloat16: exchange it as float32, which holds it exactly.
      bool widen = in.scalar_type() == at::kBFloat16;
      at::Tensor send = widen ? in.to(at::kFloat) : in, recv = widen ? at::empty(shape, in.options().dtype(at::kFloat)) : out;
      std::vector<int64_t> o = outSplits, i = inSplits;  // Gloo moves from the splits
      g.pg->alltoall_base(recv, send, o, i, c10d::AllToAllOptions())->wait();
      if (widen) out = recv.to(at::kBFloat16);
    } else {
      Job j;
      j.kind = Kind::AllToAll;
      j.what = what;
      j.tensor = in;
      j.inSplits = inSplits;
      j.outSplits = outSplits;
      std::promise<void> done;
      j.done = &done;
      {
        std::lock_guard<std::mutex> lock(g.mu);
        g.queue.push_back(&j);
      }
      g.cv.notify_one();
      done.get_future().wait();
      if (!j.error.empty()) throw std::runtime_error(j.error);
      out = j.outputs.at(0);
    }
  } catch (const c10::Error& e) {
    if (g.failed.empty()) g.failed = what + ": " + e.what_without_backtrace();
    throw std::runtime_error(failedMessage(g, what, e.what_without_backtrace()));
  } catch (const std::exception& e) {
    if (g.failed.empty()) g.failed = what + ": " + e.what();
    throw std::runtime_error(failedMessage(g, what, e.what()));
  }
  return out;
}

struct InGraphAllToAll : public torch::autograd::Function<InGraphAllToAll> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, int64_t group,
                            std::vector<int64_t> inSplits, std::vector<int64_t> outSplits) {
    ctx->saved_data["group"] = group;
    ctx->saved_data["in"] = inSplits;
    ctx->saved_data["out"] = outSplits;
    return allToAllNow(liveGroup(group, "forward"), x, inSplits, outSplits);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
    Group& g = liveGroup(ctx->saved_data["group"].toInt(), "backward");
    // The gradient rows go back to where their forward rows came from: the splits swap.
    at::Tensor back = allToAllNow(g, grads[0], ctx->saved_data["out"].toIntVector(), ctx->saved_data["in"].toIntVector());
    return {back, at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

// allToAllInGraph(group, tensor, inputSplits, outputSplits) -> tensorId: synchronous and differentiable.
napi_value AllToAllInGraph(napi_env env, napi_callback_info info) {
  M6_TRY
  auto a = args(env, info, 4);
  if (a.size() < 4) throw JsError("allToAllInGraph(group, tensor, inputSplits, outputSplits)");
  Group& g = collectiveGroup(env, a[0]);
  const at::Tensor& t = get(env, a[1]);
  if (t.dim() == 0) throw JsError("m6 dist: in-graph allToAll needs a tensor with at least one dimension (rows to split), got a scalar");
  if (g.backend == "gloo" && !t.device().is_cpu()) throw JsError("m6 dist: in-graph allToAll on the gloo backend needs a CPU tensor, got " + describe(t));
  auto inSplits = splitsArg(env, a[2], g, "inputSplits"), outSplits = splitsArg(env, a[3], g, "outputSplits");
  if (inSplits.empty() || outSplits.empty()) throw JsError("m6 dist: in-graph allToAll needs both inputSplits and outputSplits (exchange the counts first)");
  int64_t sum = 0;
  for (int64_t x : inSplits) sum += x;
  if (sum != t.size(0))
    throw JsError("m6 dist: in-graph allToAll inputSplits sum to " + std::to_string(sum) + " rows, but the input " + describe(t) + " has " + std::to_string(t.size(0)));
  at::Tensor out = InGraphAllToAll::apply(t, static_cast<int64_t>(g.id), inSplits, outSplits);
  return number(env, insert(env, out));
  M6_CATCH(env)
}

napi_value Barrier(napi_env env, napi_callback_info info) {
  M6_TRY
  auto a = args(env, info, 1);
  Group& g = collectiveGroup(env, a[0]);
  auto j = std::make_unique<Job>();
  j->kind = Kind::Barrier;
  j->what = "barrier";
  return enqueue(env, g, std::move(j));
  M6_CATCH(env)
}

// destroy(group) -> Promise<void>: after the jobs already queued, the group's backend and store are torn
// down and its thread ends. A second destroy() is a no-op.
napi_value Destroy(napi_env env, napi_callback_info info) {
  M6_TRY
  auto a = args(env, info, 1);
  uint32_t id;
  if (napi_get_value_uint32(env, a[0], &id) != napi_ok || id == 0 || id >= groups.size() || !groups[id] || groups[id]->closed) {
    napi_value p; napi_deferred d;
    napi_create_promise(env, &d, &p);
    napi_resolve_deferred(env, d, undefined(env));
    return p;
  }
  Group& g = *groups[id];
  g.closed = true;
  auto j = std::make_unique<Job>();
  j->kind = Kind::Destroy;
  j->what = "destroy";
  return enqueue(env, g, std::move(j));
  M6_CATCH(env)
}

// --- the gradient reducer: bucket all-reduces issued from autograd hooks, during backward -----------
//
// PyTorch DDP's Reducer (c10d/reducer.cpp) in miniature. A post-hook on every parameter's gradient
// accumulator copies the gradient into its bucket once backward has accumulated it; when the last
// gradient of the next bucket in order arrives, that bucket's all-reduce is issued, and Gloo's threads
// communicate it while backward computes the earlier layers' gradients. Buckets are issued strictly in
// bucket order, so every rank issues the same collectives in the same order whatever order its hooks
// fire in. `flush` (after backward) packs what no hook delivered (a parameter unused in this step, or one
// whose gradient came from an earlier micro-batch) and issues the rest; its Promise settles when every
// bucket of the step is reduced (averaged). Hooks act only while the reducer is armed, only on the
// thread that created it (CPU backward runs on the calling thread), and only while no other collective
// is held back (an allToAll learning its splits); otherwise their buckets wait for `flush`.
struct Reducer {
  uint32_t id = 0;
  uint32_t groupId = 0;
  napi_env env = nullptr;
  std::thread::id owner;
  std::vector<at::Tensor> params, flats;
  std::vector<std::vector<int64_t>> bucketParams, offsets;
  std::vector<int64_t> bucketOf, slotOf;  // per parameter: its bucket and its place in that bucket
  std::vector<std::shared_ptr<torch::autograd::Node>> accumulators;
  std::vector<uintptr_t> hookKeys;
  // This step (main thread):
  bool armed = false;
  std::vector<char> ready;     // per parameter: its gradient is in the bucket
  std::vector<int64_t> missing;  // per bucket: parameters not yet ready
  size_t nextToIssue = 0;
  int inflight = 0;
  int issuedInBackward = 0;
  std::string error;           // the step's first failure, formatted
  bool timedOut = false;
  napi_deferred waiting = nullptr;  // flush's Promise
  bool destroyed = false;
};

std::vector<Reducer*> reducers(1, nullptr);  // id 0 = none

// The reducer's group while it is live (a group destroyed first leaves its reducer inert).
Group* reducerGroup(const Reducer& r) {
  Group* g = r.groupId < groups.size() ? groups[r.groupId] : nullptr;
  return g != nullptr && !g->closed ? g : nullptr;
}

// Copies parameter i's gradient (zeros where it has none) into its slice of its bucket.
void reducerPack(Reducer& r, int64_t i) {
  at::NoGradGuard noGrad;
  const at::Tensor& p = r.params[i];
  int64_t b = r.bucketOf[i];
  at::Tensor slice = r.flats[b].narrow(0, r.offsets[b][r.slotOf[i]], p.numel());
  const at::Tensor& grad = p.grad();
  if (grad.defined()) slice.copy_(grad.reshape(-1));
  else slice.zero_();
}

// Issues bucket b's all-reduce (average) through the group's ordinary path.
void reducerIssue(Reducer& r, Group& g, size_t b) {
  auto* j = new Job();
  j->kind = Kind::AllReduce;
  j->reduce = "avg";
  j->tensor = r.flats[b];
  j->reducer = &r;
  j->what = "allReduce(avg) of gradient bucket " + std::to_string(b + 1) + "/" + std::to_string(r.flats.size()) + " (a " + describe(r.flats[b]) + " tensor)";
  r.inflight++;
  if (g.pending++ == 0) napi_ref_threadsafe_function(r.env, g.tsfn);
  dispatch(r.env, g, j);
}

void reducerSettle(napi_env env, Reducer& r) {
  if (r.waiting == nullptr || r.inflight > 0 || r.nextToIssue < r.flats.size()) return;
  napi_deferred d = r.waiting;
  r.waiting = nullptr;
  if (r.error.empty()) {
    napi_resolve_deferred(env, d, number(env, r.issuedInBackward));
  } else {
    Job j;
    j.kind = Kind::AllReduce;
    j.timedOut = r.timedOut;
    Group* g = reducerGroup(r);
    napi_value err;
    if (g != nullptr) err = distError(env, *g, j, r.error);
    else { napi_value msg; napi_create_string_utf8(env, r.error.c_str(), r.error.size(), &msg); napi_create_error(env, nullptr, msg, &err); }
    napi_reject_deferred(env, d, err);
  }
}

void reducerFree(Reducer* r) {
  if (reducers.size() > r->id && reducers[r->id] == r) reducers[r->id] = nullptr;
  delete r;
}

void reducerJobDone(napi_env env, Group* g, Job* raw) {
  std::unique_ptr<Job> j(raw);
  Reducer& r = *j->reducer;
  if (--g->pending == 0) napi_unref_threadsafe_function(env, g->tsfn);
  r.inflight--;
  if (!j->error.empty()) {
    char ms[32];
    std::snprintf(ms, sizeof ms, "%.0f", j->ms);
    if (r.error.empty()) {
      r.error = "m6 dist: " + j->what + " failed on " + where(*g) + " after " + ms + " ms: " + j->error;
      r.timedOut = j->timedOut || looksLikeTimeout(j->error);
    }
    if (g->failed.empty()) g->failed = j->what + ": " + j->error;
  }
  if (r.destroyed) {
    if (r.inflight == 0) reducerFree(&r);
    return;
  }
  reducerSettle(env, r);
}

// The hook: parameter i's gradient is accumulated.
void reducerReady(Reducer& r, int64_t i) {
  if (!r.armed || r.destroyed || std::this_thread::get_id() != r.owner || r.ready[i]) return;
  reducerPack(r, i);
  r.ready[i] = 1;
  r.missing[r.bucketOf[i]]--;
  Group* g = reducerGroup(r);
  while (g != nullptr && r.nextToIssue < r.flats.size() && r.missing[r.nextToIssue] == 0 && !g->blocking && g->held.empty() && g->failed.empty()) {
    reducerIssue(r, *g, r.nextToIssue++);
    r.issuedInBackward++;
  }
}

Reducer& reducerOf(napi_env env, napi_value v) {
  uint32_t id;
  if (napi_get_value_uint32(env, v, &id) != napi_ok || id == 0 || id >= reducers.size() || !reducers[id] || reducers[id]->destroyed)
    throw JsError("m6 dist: not a live gradient reducer (it was destroyed)");
  return *reducers[id];
}

// reducerCreate(group, params, flats, bucketParams, bucketOffsets) -> id. Every parameter is a leaf that
// requires grad, in exactly one bucket; each flat is a contiguous CPU tensor of its bucket's dtype.
napi_value ReducerCreate(napi_env env, napi_callback_info info) {
  M6_TRY
  auto a = args(env, info, 5);
  if (a.size() < 5) throw JsError("reducerCreate(group, params, flats, bucketParams, bucketOffsets)");
  Group& g = collectiveGroup(env, a[0]);
  if (g.backend != "gloo") throw JsError("m6 dist: the overlapping gradient reducer runs on gloo; " + g.backend + " reduces after backward");
  auto r = std::make_unique<Reducer>();
  r->groupId = g.id;
  r->env = env;
  r->owner = std::this_thread::get_id();
  uint32_t np = arrayLength(env, a[1]), nb = arrayLength(env, a[2]);
  if (arrayLength(env, a[3]) != nb || arrayLength(env, a[4]) != nb) throw JsError("reducerCreate: one parameter list and one offset list per bucket");
  for (uint32_t i = 0; i < np; i++) {
    const at::Tensor& p = get(env, element(env, a[1], i));
    if (!p.is_leaf() || !p.requires_grad() || !p.device().is_cpu()) throw JsError("reducerCreate: parameter " + std::to_string(i) + " (" + describe(p) + ") is not a CPU leaf that requires grad");
    r->params.push_back(p);
  }
  r->bucketOf.assign(np, -1);
  r->slotOf.assign(np, -1);
  for (uint32_t b = 0; b < nb; b++) {
    const at::Tensor& f = denseTensor(env, g, element(env, a[2], b), "reducerCreate");
    r->flats.push_back(f);
    auto ps = getIntList(env, element(env, a[3], b), "bucketParams");
    auto os = getIntList(env, element(env, a[4], b), "bucketOffsets");
    if (ps.size() != os.size()) throw JsError("reducerCreate: bucket " + std::to_string(b) + " has " + std::to_string(ps.size()) + " parameters and " + std::to_string(os.size()) + " offsets");
    for (size_t k = 0; k < ps.size(); k++) {
      int64_t i = ps[k];
      if (i < 0 || i >= np || r->bucketOf[i] >= 0) throw JsError("reducerCreate: parameter index " + std::to_string(i) + " is out of range or in two buckets");
      const at::Tensor& p = r->params[i];
      if (p.scalar_type() != f.scalar_type() || os[k] < 0 || os[k] + p.numel() > f.numel())
        throw JsError("reducerCreate: parameter " + std::to_string(i) + " (" + describe(p) + ") does not fit bucket " + std::to_string(b) + " (" + describe(f) + ") at offset " + std::to_string(os[k]));
      r->bucketOf[i] = b;
      r->slotOf[i] = static_cast<int64_t>(k);
    }
    r->bucketParams.push_back(ps);
    r->offsets.push_back(os);
  }
  for (uint32_t i = 0; i < np; i++)
    if (r->bucketOf[i] < 0) throw JsError("reducerCreate: parameter " + std::to_string(i) + " is in no bucket");
  r->ready.assign(np, 0);
  r->missing.assign(nb, 0);
  r->id = static_cast<uint32_t>(reducers.size());
  Reducer* rp = r.get();
  for (uint32_t i = 0; i < np; i++) {
    auto acc = torch::autograd::impl::grad_accumulator(r->params[i]);
    int64_t idx = i;
    r->hookKeys.push_back(acc->add_post_hook(std::make_unique<torch::autograd::utils::LambdaPostHook>(
        [rp, idx](const torch::autograd::variable_list& outputs, const torch::autograd::variable_list&) {
          reducerReady(*rp, idx);
          return outputs;
        })));
    r->accumulators.push_back(std::move(acc));  // keeps the node (and its hook) alive, as DDP does
  }
  reducers.push_back(r.release());
  return number(env, rp->id);
  M6_CATCH(env)
}

// reducerArm(id, loss?): the next backward's hooks issue buckets as they fill. With the loss about to be
// backpropagated, parameters its graph does not reach (DDP's find_unused_parameters) are ready at once,
// with the gradient they already hold (or zeros), so their buckets need not wait for flush.
napi_value ReducerArm(napi_env env, napi_callback_info info) {
  M6_TRY
  auto a = args(env, info, 2);
  Reducer& r = reducerOf(env, a[0]);
  if (r.inflight > 0 || r.waiting != nullptr) throw JsError("m6 dist: the gradient reducer's previous step is still being reduced (await its flush() first)");
  std::fill(r.ready.begin(), r.ready.end(), 0);
  for (size_t b = 0; b < r.flats.size(); b++) r.missing[b] = static_cast<int64_t>(r.bucketParams[b].size());
  r.nextToIssue = 0;
  r.issuedInBackward = 0;
  r.error.clear();
  r.timedOut = false;
  r.armed = true;
  if (a.size() > 1 && typeOf(env, a[1]) == napi_number) {
    const at::Tensor& loss = get(env, a[1]);
    std::unordered_set<const torch::autograd::Node*> seen;
    std::vector<torch::autograd::Node*> stack;
    if (loss.grad_fn()) stack.push_back(loss.grad_fn().get());
    while (!stack.empty()) {
      torch::autograd::Node* n = stack.back();
      stack.pop_back();
      if (!seen.insert(n).second) continue;
      for (const auto& e : n->next_edges())
        if (e.function && !seen.count(e.function.get())) stack.push_back(e.function.get());
    }
    for (size_t i = 0; i < r.params.size(); i++)
      if (!seen.count(r.accumulators[i].get())) reducerReady(r, static_cast<int64_t>(i));
  }
  return undefined(env);
  M6_CATCH(env)
}

// reducerFlush(id) -> Promise<number>: packs and issues every bucket no hook issued (all of them when not
// armed), in order; resolves, with how many buckets backward's hooks issued, once all are averaged.
napi_value ReducerFlush(napi_env env, napi_callback_info info) {
  M6_TRY
  auto a = args(env, info, 1);
  Reducer& r = reducerOf(env, a[0]);
  if (r.waiting != nullptr) throw JsError("m6 dist: the gradient reducer is already being flushed");
  Group* g = reducerGroup(r);
  if (g == nullptr) throw JsError("m6 dist: the gradient reducer's process group was destroyed");
  if (!r.armed) {
    std::fill(r.ready.begin(), r.ready.end(), 0);
    r.nextToIssue = 0;
    r.issuedInBackward = 0;
    r.error.clear();
  }
  r.armed = false;
  for (; r.nextToIssue < r.flats.size(); r.nextToIssue++) {
    size_t b = r.nextToIssue;
    for (int64_t i : r.bucketParams[b]) if (!r.ready[i]) reducerPack(r, i);
    reducerIssue(r, *g, b);
  }
  napi_value promise;
  napi_create_promise(env, &r.waiting, &promise);
  reducerSettle(env, r);
  return promise;
  M6_CATCH(env)
}

// reducerDestroy(id): removes the hooks; buckets still in flight finish first.
napi_value ReducerDestroy(napi_env env, napi_callback_info info) {
  M6_TRY
  auto a = args(env, info, 1);
  uint32_t id;
  if (napi_get_value_uint32(env, a[0], &id) != napi_ok || id == 0 || id >= reducers.size() || !reducers[id] || reducers[id]->destroyed) return undefined(env);
  Reducer* r = reducers[id];
  for (size_t i = 0; i < r->accumulators.size(); i++) r->accumulators[i]->del_post_hook(r->hookKeys[i]);
  r->accumulators.clear();
  r->destroyed = true;
  r->armed = false;
  if (r->waiting != nullptr) {  // nobody awaits a destroyed reducer's flush any more
    napi_resolve_deferred(env, r->waiting, undefined(env));
    r->waiting = nullptr;
  }
  if (r->inflight == 0) reducerFree(r);
  return undefined(env);
  M6_CATCH(env)
}

napi_value Backends(napi_env env, napi_callback_info) {
  napi_value r = object(env);
  setNamed(env, r, "gloo", boolean(env, true));
#if defined(M6_WITH_NCCL)
  setNamed(env, r, "nccl", boolean(env, true));
#else
  setNamed(env, r, "nccl", boolean(env, false));
#endif
  return r;
}

#else  // !M6_WITH_GLOO: the addon was built without Gloo's headers.

const char* kNoGloo =
    "m6 dist: this native addon was built without c10d's Gloo backend: Gloo's headers were not found when it was built. "
    "Install them (Debian/Ubuntu: apt-get install libgloo-dev, the same version as libgloo0; scripts/install-system-deps.sh does it) "
    "and rebuild with npm run build:native";

napi_value InitProcessGroup(napi_env env, napi_callback_info) { throwJs(env, kNoGloo); return nullptr; }
napi_value Unavailable(napi_env env, napi_callback_info) { throwJs(env, kNoGloo); return nullptr; }
napi_value Backends(napi_env env, napi_callback_info) {
  napi_value r = object(env);
  setNamed(env, r, "gloo", boolean(env, false));
  setNamed(env, r, "nccl", boolean(env, false));
  setNamed(env, r, "reason", string(env, kNoGloo));
  return r;
}
#define AllReduce Unavailable
#define Broadcast Unavailable
#define AllGather Unavailable
#define AllToAll Unavailable
#define AllToAllInGraph Unavailable
#define Barrier Unavailable
#define Destroy Unavailable
#define ReducerCreate Unavailable
#define ReducerArm Unavailable
#define ReducerFlush Unavailable
#define ReducerDestroy Unavailable

#endif

}  // namespace

void registerDistributed(napi_env env, napi_value exports) {
  exportFn(env, exports, "distBackends", Backends);
  exportFn(env, exports, "distInit", InitProcessGroup);
  exportFn(env, exports, "distAllReduce", AllReduce);
  exportFn(env, exports, "distBroadcast", Broadcast);
  exportFn(env, exports, "distAllGather", AllGather);
  exportFn(env, exports, "distAllToAll", AllToAll);
  exportFn(env, exports, "distAllToAllInGraph", AllToAllInGraph);
  exportFn(env, exports, "distBarrier", Barrier);
  exportFn(env, exports, "distDestroy", Destroy);
  exportFn(env, exports, "distReducerCreate", ReducerCreate);
  exportFn(env, exports, "distReducerArm", ReducerArm);
  exportFn(env, exports, "distReducerFlush", ReducerFlush);
  exportFn(env, exports, "distReducerDestroy", ReducerDestroy);
}

}  // namespace m6
