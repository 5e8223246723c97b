#include "control/control_plane.hpp"

#include <sys/inotify.h>
#include <unistd.h>

#include "plane.hpp"

namespace secbox::control {

std::string valid_utf8(const std::string& in) {
  std::string out;
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size();) {
    unsigned char c = static_cast<unsigned char>(in[i]);
    std::size_t n = c < 0x80           ? 1
                    : (c >> 5) == 0x6  ? 2
                    : (c >> 4) == 0xE  ? 3
                    : (c >> 3) == 0x1E ? 4
                                       : 0;
    bool good = n > 0 && i + n <= in.size();
    for (std::size_t k = 1; good && k < n; ++k)
      good = (static_cast<unsigned char>(in[i + k]) & 0xC0) == 0x80;
    if (good && n > 1 && envfile::is_valid_utf8(std::string_view(in).substr(i, n))) {
      out.append(in, i, n);
      i += n;
    } else if (good && n == 1) {
      out += in[i++];
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

bool is_unit_name(const std::string& s) {
  static const std::regex kUnit("^[A-Za-z0-9:_.@\\\\-]{1,200}$");
  return !s.empty() && s[0] != '-' && std::regex_match(s, kUnit);
}

nlohmann::json container_json(const std::vector<ContainerInfo>& list) {
  auto out = nlohmann::json::array();
  for (const auto& c : list) {
    nlohmann::json j{{"name", c.name}, {"state", c.state}};
    if (!c.health.empty()) j["health"] = c.health;
    out.push_back(std::move(j));
  }
  return out;
}

void ControlPlane::Impl::reload() {
  struct Loaded {
    Result<Permissions> permissions;
    ToolsLoaded tools;
  };
  auto s = settings;
  run(
      ops_pool,
      [s] {
        return Loaded{Permissions::load(s.permissions_file), load_tools(s.tools_dir)};
      },
      [this](Loaded loaded) {
        if (loaded.permissions) {
          permissions = std::move(loaded.permissions).value();
          permissions_loaded = true;
        } else {
          // Fail closed: an unreadable file allows nothing.
          permissions = Permissions{};
          permissions_loaded = false;
          log.error("control.json is invalid; node control is unavailable until it is fixed.",
                    {{"reason", loaded.permissions.error().message}});
        }
        for (const auto& p : loaded.tools.problems)
          log.warn("Skipped an invalid tool file.", {{"reason", p}});
        tools = std::move(loaded.tools.tools);
        log.info("Read control.json and the registered tools.",
                 {{"tools", static_cast<std::int64_t>(tools.size())},
                  {"invalid_tool_files", static_cast<std::int64_t>(loaded.tools.problems.size())}});
      });
}

// The tools folder is watched; a change reloads (debounced), as SIGHUP does.
void ControlPlane::Impl::start_watch() {
  int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) return;
  if (::inotify_add_watch(fd, settings.tools_dir.c_str(),
                          IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CREATE) <
      0) {
    ::close(fd);
    log.info("The tools folder cannot be watched (absent?); SIGHUP re-reads it.",
             {{"dir", settings.tools_dir}});
    return;
  }
  watch.assign(fd);
  read_watch();
}

void ControlPlane::Impl::read_watch() {
  watch.async_read_some(boost::asio::buffer(watch_buf),
                        [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                          if (ec || self->life.stopping()) return;
                          self->reload_timer.expires_after(std::chrono::milliseconds(200));
                          self->reload_timer.async_wait([self](boost::system::error_code e) {
                            if (!e && !self->life.stopping()) self->reload();
                          });
                          self->read_watch();
                        });
}

ControlPlane::ControlPlane(boost::asio::io_context& loop, protocol::Router& d,
                           replica::EventSink& events, ControlSettings settings, ControlHooks hooks)
    : impl_(std::make_shared<Impl>(loop, events, std::move(settings), std::move(hooks))) {
  auto& i = *impl_;
  i.router = &d;
  std::weak_ptr<Impl> weak = impl_;
  auto route = [weak](void (Impl::*fn)(const Envelope&, Reply)) {
    return [weak, fn](const Envelope& e, Reply r) {
      if (auto self = weak.lock()) ((*self).*fn)(e, std::move(r));
    };
  };
  d.on_request("compose.snapshot", route(&Impl::compose_snapshot));
  d.on_request("exec.run", route(&Impl::exec_run));
  d.on_request("exec.job", route(&Impl::exec_job));
  d.on_request("metrics.get", route(&Impl::metrics_get));
  d.on_request("containers.list", route(&Impl::containers_list));
  d.on_request("containers.restart", route(&Impl::containers_restart));
  d.on_request("units.status", route(&Impl::units_status));
  d.on_request("units.restart", route(&Impl::units_restart));
  d.on_request("journal.tail", route(&Impl::journal_tail));
  d.on_request("env.set", [weak](const Envelope& e, Reply r) {
    if (auto self = weak.lock()) self->env_change(e, std::move(r), true);
  });
  d.on_request("env.unset", [weak](const Envelope& e, Reply r) {
    if (auto self = weak.lock()) self->env_change(e, std::move(r), false);
  });
  d.on_request("jwt.rotate", route(&Impl::jwt_rotate));
  // health.report at every welcome, then every interval, until the session ends.
  d.on_session({[weak](const nlohmann::json&) {
                  auto self = weak.lock();
                  if (!self || self->life.stopping()) return;
                  self->welcomed = true;
                  self->send_health();
                  self->schedule_health();
                },
                [weak] {
                  auto self = weak.lock();
                  if (!self) return;
                  self->welcomed = false;
                  self->health_timer.cancel();
                }});
}

ControlPlane::~ControlPlane() {
  impl_->cancel->cancel();
  impl_->life.stop(nullptr);
  impl_->reload_timer.cancel();
  boost::system::error_code ec;
  impl_->watch.close(ec);
  impl_->held.release_all();
}

void ControlPlane::start() {
  impl_->reload();
  impl_->start_watch();
}

void ControlPlane::stop(std::function<void()> on_stopped) {
  auto& i = *impl_;
  i.life.assert_on_loop("ControlPlane::stop");
  i.cancel->cancel();  // children are killed at once; compose's waits end
  i.health_timer.cancel();
  i.reload_timer.cancel();
  boost::system::error_code ec;
  i.watch.close(ec);
  i.welcomed = false;
  i.held.release_all();  // answers still being worked out go unanswered
  i.life.stop(std::move(on_stopped));
}

void ControlPlane::reload() { impl_->reload(); }
void ControlPlane::reconfigure(ControlSettings settings) {
  const bool interval_changed = settings.health_interval != impl_->settings.health_interval;
  impl_->settings = std::move(settings);
  impl_->settings.compose.cancel = impl_->cancel;
  if (interval_changed)
    impl_->log.info("The health report interval changed; it applies from the next report.");
}
std::size_t ControlPlane::tool_count() const { return impl_->tools.size(); }
bool ControlPlane::permissions_loaded() const { return impl_->permissions_loaded; }
Result<void> ControlPlane::permission(std::string_view section, std::string_view operation) const {
  return impl_->permissions.check(section, operation);
}

}  // namespace secbox::control
