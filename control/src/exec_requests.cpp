// The control plane, §7.4: registered commands, run on the loop, their jobs kept for a while.
#include "plane.hpp"

namespace secbox::control {

void ControlPlane::Impl::purge_jobs() {
  const auto now = SteadyClock::now();
  for (auto it = jobs.begin(); it != jobs.end();) {
    it = it->second.done && now - it->second.done_at > settings.job_retention ? jobs.erase(it)
                                                                              : std::next(it);
  }
}

void ControlPlane::Impl::exec_run(const Envelope& req, Reply reply) {
  purge_jobs();
  const std::string tool = req.payload["tool"];
  const std::string command = req.payload["command"];
  std::chrono::milliseconds timeout{};
  auto argv = build_argv(tools, tool, command, req.payload["args"], &timeout);
  if (!argv) {
    log.info("Refused an exec.run.", {{"tool", tool.substr(0, 64)},
                                      {"command", command.substr(0, 64)},
                                      {"reason", argv.error().message}});
    return reply.error(argv.error());
  }
  if (running_jobs >= settings.max_jobs) {
    return reply.error(protocol::ErrorCode::busy,
                       std::to_string(settings.max_jobs) + " commands are already running");
  }
  const std::string job_id = "job-" + random_uuid();
  jobs[job_id] = Job{req.id, false, nullptr, {}};
  ++running_jobs;
  reply.send("exec.accepted", {{"jobId", job_id}});
  log.info("Running a registered command.",
           {{"tool", tool}, {"command", command}, {"job_id", job_id}});
  ProcessOptions o;
  o.argv = std::move(argv).value();
  o.env = std::vector<std::string>{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"};
  o.timeout = timeout;
  o.max_output = kMaxOutput;
  o.cancel = cancel;
  run_child(o, [this, job_id](Result<ProcessResult> r) {
    --running_jobs;
    auto it = jobs.find(job_id);
    if (it == jobs.end()) return;
    nlohmann::json result{{"jobId", job_id}};
    if (r) {
      const auto& p = r.value();
      result["exitCode"] = p.signal != 0 ? 128 + p.signal : p.exit_code;
      result["stdout"] = valid_utf8(p.out);
      result["stderr"] = valid_utf8(p.err);
      result["durationMs"] = p.duration.count();
      result["timedOut"] = p.timed_out;
    } else {
      result["exitCode"] = 127;
      result["stdout"] = "";
      result["stderr"] = valid_utf8(r.error().message);
      result["durationMs"] = 0;
      result["timedOut"] = false;
    }
    it->second.done = true;
    it->second.result = result;
    it->second.done_at = SteadyClock::now();
    log.info("A registered command ended.",
             {{"job_id", job_id},
              {"exit_code", result["exitCode"].get<int>()},
              {"timed_out", result["timedOut"].get<bool>()},
              {"duration_ms", result["durationMs"].get<std::int64_t>()}});
    // Due while the tunnel is down: not sent later; the cloud asks with exec.job.
    if (router) router->send("exec.result", std::move(result), it->second.re);
  });
}

void ControlPlane::Impl::exec_job(const Envelope& req, Reply reply) {
  purge_jobs();
  const std::string job_id = req.payload["jobId"];
  auto it = jobs.find(job_id);
  if (it == jobs.end())
    return reply.error(protocol::ErrorCode::not_found,
                       "no job " + job_id.substr(0, 128) + " (jobs are kept 5 minutes)");
  nlohmann::json out = it->second.done ? it->second.result : nlohmann::json{{"jobId", job_id}};
  out["state"] = it->second.done ? "done" : "running";
  reply.send("exec.job.result", std::move(out));
}

}  // namespace secbox::control
