// The control plane, §7.3: a compose project checked, written and brought up, one at a time.
#include "plane.hpp"

namespace secbox::control {

void ControlPlane::Impl::compose_snapshot(const Envelope& req, Reply reply) {
  if (compose_busy)
    return reply.error(protocol::ErrorCode::busy,
                       "a compose operation is already running; try again when it ends");
  compose_busy = true;
  const std::string project = req.payload["project"];
  const std::string yaml = req.payload["yaml"];
  auto id = hold(std::move(reply));
  log.info("Compose snapshot received.",
           {{"project", project.substr(0, 64)}, {"bytes", yaml.size()}});
  auto s = settings.compose;
  s.allowance = permissions.compose_allowance(project);
  auto lg = log;
  run(
      compose_pool,
      [s, project, yaml, lg] {
        return run_compose_snapshot(
            s, project, yaml, [&](std::string_view phase, bool ok, const std::string& detail) {
              lg.write(ok ? log::Level::info : log::Level::warn,
                       ok ? "Compose phase passed." : "Compose phase failed.",
                       {{"project", project.substr(0, 64)}, {"phase", phase}, {"detail", detail}});
            });
      },
      [this, id, project](ComposeOutcome outcome) {
        compose_busy = false;
        if (outcome.phase == "rollback-failed") {
          log.error("COMPOSE ROLLBACK FAILED: the stack may be down and needs a person.",
                    {{"project", project.substr(0, 64)}, {"detail", outcome.detail}});
        } else {
          log.write(
              outcome.ok ? log::Level::info : log::Level::warn, "Compose snapshot finished.",
              {{"project", project.substr(0, 64)}, {"ok", outcome.ok}, {"phase", outcome.phase}});
        }
        nlohmann::json result{
            {"ok", outcome.ok}, {"phase", outcome.phase}, {"detail", valid_utf8(outcome.detail)}};
        auto data = result;
        data["project"] = project;
        events.enqueue(replica::OutboundEvent{random_uuid(), "compose_result",
                                              format_rfc3339(std::chrono::system_clock::now()),
                                              std::move(data)},
                       [weak = weak_from_this()](Result<replica::Enqueued> r) {
                         auto self = weak.lock();
                         if (!r && self)
                           self->log.error("A compose_result could not be queued.",
                                           {{"reason", r.error().message}});
                       });
        if (auto r = take(id)) r->send("compose.result", std::move(result));
      });
}

}  // namespace secbox::control
