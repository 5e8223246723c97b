#pragma once
// The control plane's inside, shared by the files that implement it by
// concern: control_plane.cpp (life, registration, configuration),
// compose_requests.cpp (§7.3), exec_requests.cpp (§7.4), node_requests.cpp
// (§7.5) and health_report.cpp (§7.1). Not a public header.
#include <atomic>
#include <chrono>
#include <optional>
#include <string>
#include <vector>
#include <map>
#include <set>
#include <sstream>
#include <regex>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include "common/blocking.hpp"
#include "control/control_plane.hpp"
#include "common/ids.hpp"
#include "common/lifetime.hpp"
#include "common/log.hpp"
#include "common/net.hpp"
#include "common/process.hpp"
#include "common/time.hpp"
#include "control/host.hpp"
#include "control/permissions.hpp"
#include "control/tools.hpp"
#include "envfile/env_file.hpp"
#include "protocol/held_replies.hpp"
#include "protocol/router.hpp"
#include "replica/ports.hpp"

namespace secbox::control {

using protocol::Envelope;
using protocol::Reply;
using SteadyClock = std::chrono::steady_clock;

inline constexpr std::size_t kMaxOutput = 64 * 1024;

// Child output is bytes; JSON strings are UTF-8. Invalid sequences become U+FFFD.
std::string valid_utf8(const std::string& in);
// A systemd unit name that cannot be read as an option.
bool is_unit_name(const std::string& s);
nlohmann::json container_json(const std::vector<ContainerInfo>& list);

struct Job {
  std::string re;  // the exec.run's id
  bool done = false;
  nlohmann::json result;  // the exec.result fields
  SteadyClock::time_point done_at;
};

struct HostSample {
  nlohmann::json cpu, memory, disk, containers;
};

struct ControlPlane::Impl : std::enable_shared_from_this<Impl> {
  Impl(boost::asio::io_context& l, replica::EventSink& e, ControlSettings s, ControlHooks h)
      : loop(l), events(e), settings(std::move(s)), hooks(std::move(h)), compose_pool(l, 1),
        ops_pool(l, 2), health_timer(l), watch(l), reload_timer(l) {
    settings.compose.cancel = cancel;
  }

  boost::asio::io_context& loop;
  replica::EventSink& events;
  ControlSettings settings;
  ControlHooks hooks;
  std::shared_ptr<Cancellation> cancel = std::make_shared<Cancellation>();
  BlockingPool compose_pool;  // one compose operation at a time
  BlockingPool ops_pool;      // node control, health figures, reloads
  boost::asio::steady_timer health_timer;
  boost::asio::posix::stream_descriptor watch;
  boost::asio::steady_timer reload_timer;
  char watch_buf[4096];
  log::Logger log{"control"};

  Permissions permissions;
  bool permissions_loaded = false;
  ToolSet tools;
  protocol::Router* router = nullptr;
  protocol::HeldReplies held;  // replies waiting on a worker
  bool compose_busy = false;
  std::map<std::string, Job> jobs;
  std::size_t running_jobs = 0;
  std::optional<CpuTimes> last_cpu;
  bool welcomed = false;
  Lifetime life{loop};  // work out on the pools and children; stopping

  // ---- plumbing ----------------------------------------------------------

  // Runs fn on a pool; done runs on the loop unless the plane is stopping.
  template <class Fn, class Done>
  void run(BlockingPool& pool, Fn fn, Done done) {
    life.begin();
    pool.run(std::move(fn),
             [self = shared_from_this(), done = std::move(done)](auto result) mutable {
               if (self->life.end()) done(std::move(result));
             });
  }

  // Runs a program on the loop (registered commands: no thread is held while
  // it runs); done runs on the loop unless the plane is stopping, whose
  // cancellation kills the child at once.
  template <class Done>
  void run_child(const ProcessOptions& o, Done done) {
    life.begin();
    start_process(
        loop, o,
        [self = shared_from_this(), done = std::move(done)](Result<ProcessResult> r) mutable {
          if (self->life.end()) done(std::move(r));
        });
  }

  std::uint64_t hold(Reply reply) { return held.hold(std::move(reply)); }
  // The reply, if its session is still attached.
  std::optional<Reply> take(std::uint64_t id) { return held.take(id); }

  bool permitted(Reply& reply, const char* section, const char* op,
                 std::optional<std::string_view> name = {}) {
    auto allowed = permissions.check(section, op, name);
    if (allowed) return true;
    log.info("Refused a node-control request.",
             {{"operation", std::string(section) + "." + op},
              {"verdict", std::string(to_string(allowed.error().code))}});
    reply.error(allowed.error());
    return false;
  }

  // One of the box's own programs (systemctl, journalctl, the container
  // tool) in a clean environment, killed at `timeout` or when the plane
  // stops: for run_child on the loop, or run_tool on a worker.
  static ProcessOptions tool(const std::shared_ptr<Cancellation>& cancel,
                             const std::vector<std::string>& argv,
                             std::chrono::milliseconds timeout, std::size_t max_output = kMaxOutput,
                             const std::string& container_host = {}) {
    ProcessOptions o;
    o.argv = argv;
    o.env = clean_environment(std::nullopt, container_host);
    o.timeout = timeout;
    o.max_output = max_output;
    o.cancel = cancel;
    return o;
  }
  // Worker side (a step among other blocking ones: compose, the health
  // sample): these take what they need by value, never the plane itself (a
  // worker must not hold the last reference to what owns its pool).
  static Result<ProcessResult> run_tool(const std::shared_ptr<Cancellation>& cancel,
                                        const std::vector<std::string>& argv,
                                        std::chrono::milliseconds timeout,
                                        std::size_t max_output = kMaxOutput,
                                        const std::string& container_host = {}) {
    return run_process(tool(cancel, argv, timeout, max_output, container_host));
  }

  static std::vector<std::string> with(std::vector<std::string> argv,
                                       std::initializer_list<std::string> more) {
    argv.insert(argv.end(), more);
    return argv;
  }

  // ---- configuration -----------------------------------------------------

  void reload();

  // The tools folder is watched; a change reloads (debounced), as SIGHUP does.
  void start_watch();

  void read_watch();

  // ---- §7.3 compose ------------------------------------------------------

  void compose_snapshot(const Envelope& req, Reply reply);

  // ---- §7.4 registered commands -----------------------------------------

  void purge_jobs();

  void exec_run(const Envelope& req, Reply reply);

  void exec_job(const Envelope& req, Reply reply);

  // ---- §7.5 node control --------------------------------------------------

  void metrics_get(const Envelope& req, Reply reply);

  static Result<std::vector<ContainerInfo>> list_containers(
      const std::shared_ptr<Cancellation>& cancel, const std::vector<std::string>& container_cmd,
      const std::string& container_host);

  void containers_list(const Envelope&, Reply reply);

  void containers_restart(const Envelope& req, Reply reply);

  void units_status(const Envelope& req, Reply reply);

  void units_restart(const Envelope& req, Reply reply);

  void journal_tail(const Envelope& req, Reply reply);

  void env_change(const Envelope& req, Reply reply, bool set);

  void jwt_rotate(const Envelope&, Reply reply);

  // ---- §7.1 health --------------------------------------------------------

  void send_health();

  void schedule_health();
};

}  // namespace secbox::control
