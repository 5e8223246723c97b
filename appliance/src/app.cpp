#include "appliance/app.hpp"

#include <signal.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <algorithm>
#include <cstdlib>
#include <sstream>
#include <vector>

#include "alarms/camera_alarms.hpp"
#include "common/atomic_file.hpp"
#include "common/blocking.hpp"
#include "common/certificates.hpp"
#include "common/clock.hpp"
#include "common/component.hpp"
#include "common/ids.hpp"
#include "common/log.hpp"
#include "common/net.hpp"
#include "common/process.hpp"
#include "common/prometheus.hpp"
#include "common/time.hpp"
#include "control/control_plane.hpp"
#include "envfile/env_file.hpp"
#include "lan/api.hpp"
#include "lan_name_keeper.hpp"
#include "common/url.hpp"
#include "lan/certificate.hpp"
#include "httpd/server.hpp"
#include "media/frigate_events.hpp"
#include "media/frigate_proxy.hpp"
#include "media/media_service.hpp"
#include "pairing/pairing_server.hpp"
#include "replica/database.hpp"
#include "replica/queue.hpp"
#include "replica/reads.hpp"
#include "replica/sync.hpp"
#include "tunnel/cloud_session.hpp"
#include "tunnel/device_token.hpp"
#include "protocol/dispatcher.hpp"
#include "update/update_service.hpp"
#include "figure_source.hpp"
#include "media_live_video.hpp"
#include "lan_certificate_keeper.hpp"

namespace secbox::appliance {
namespace {
// The whole stop sequence ends within 4.5 s: a stop must be quick enough for
// a guard's reboot, and the unit's TimeoutStopSec (15 s) leaves the rest to
// the embedded PostgreSQL.
constexpr std::chrono::milliseconds kStopDeadline{4500};
// The exit status that asks the supervisor (systemd's RestartForceExitStatus,
// scripts/run) to start `current` again: an update has switched it.
constexpr int kRestartForUpdate = 75;
constexpr int kBug = 70;  // EX_SOFTWARE: an exception escaped to the loop
}  // namespace

void configure_logging(const Config& config) {
  log::configure(log::Options{config.development,
                              log::parse_level(config.log_level).value_or(log::Level::info)});
}

struct App::Impl {
  explicit Impl(Config c)
      : config(std::move(c)), signals(io, SIGTERM, SIGINT, SIGHUP), stop_deadline(io),
        workers(io, 2), versions(update::versions_root(config.versions_dir)),
        version(update::running_version()) {}

  Config config;
  boost::asio::io_context io;
  boost::asio::signal_set signals;
  boost::asio::steady_timer stop_deadline;
  boost::asio::steady_timer watchdog{io};
  BlockingPool workers;        // config reloads and other small blocking jobs
  const std::string versions;  // the versions tree, "" when this binary runs outside one
  const std::string version;   // the version running (hello, health, the log)
  update::UpdateService* updates = nullptr;
  log::Logger log{"appliance"};
  // The one dispatcher of the box's life: components register their types
  // on it when made; each cloud session is only its transport, and a
  // re-pairing swaps that (replace_cloud). It outlives the components.
  const std::unique_ptr<Clock> clock = system_clock_on(io);
  protocol::MessageIds message_ids;
  protocol::Dispatcher dispatcher{io, message_ids};
  std::vector<std::unique_ptr<Component>> components;  // in start order
  replica::Database* database = nullptr;
  std::unique_ptr<replica::ReplicaReader> reader;
  replica::OutboundQueue* queue = nullptr;
  tunnel::CloudSession* cloud = nullptr;
  control::ControlPlane* control = nullptr;
  media::MediaService* media = nullptr;
  media::FrigateProxy* frigate = nullptr;
  media::FrigateEvents* frigate_events = nullptr;
  std::unique_ptr<replica::SyncDown> sync;
  pairing::PairingServer* pairing = nullptr;
  std::unique_ptr<alarms::CameraAlarms> camera_alarms;  // outlives the LAN API, which listens to it
  std::unique_ptr<LanNameKeeper> lan_name;
  std::unique_ptr<lan::BanPhotos> ban_photos;  // before lan_api, which uses it
  MediaLiveVideo live_video{media};            // before lan_api, which uses it
  std::unique_ptr<lan::LanApi> lan_api;
  httpd::Server* lan_server = nullptr;
  LanCertificateKeeper lan_cert{io, workers, config.paths.state_dir,
                                std::chrono::seconds(config.lan_cert_check_s)};
  std::vector<Component*> after_database;  // started once the database is ready
  bool database_was_ready = false;
  bool after_database_started = false;
  const std::string boot_id = random_uuid();
  // What the box says about itself (/metrics, the status bar, health.report).
  FigureSource figures{workers, config.paths.state_dir, version, boot_id};
  bool stopping = false;
  int exit_code = 0;

  void wire() {
    replica::DatabaseSettings db;
    db.url = config.database_url;
    db.embedded.dir = config.paths.pg_dir();
    db.embedded.bin_dir = config.pg_bin_dir;
    db.embedded.user = config.pg_user;
    // A version on trial leaves its contract migrations for after the trial,
    // so that the version before it can run again on this database.
    db.contract_migrations = !update::on_trial(versions, version);
    auto database_component = std::make_unique<replica::Database>(
        io, std::move(db), [this](int code) { request_stop(code, "the database cannot be used"); });
    database = database_component.get();
    database->on_ready([this] {
      log.info(config.paired() ? "secbox is running." : "secbox is running, not paired yet.",
               {{"device_id", config.device_id}, {"schema_version", database->schema_version()}});
      if (database_was_ready) return;
      database_was_ready = true;
      figures.running = true;
      // hello carries the cursors and the queue's figures: read them first.
      reader->refresh([this] {
        if (stopping) return;
        after_database_started = true;
        // Sessions restored from before a restart meet the current guard list.
        if (lan_api) lan_api->replica_changed("user");
        for (auto* c : after_database) c->start();
        if (pairing && lan_server) pairing->set_lan_port(lan_server->port());
        // systemd (Type=notify): started once the database is usable.
        ::sd_notify(0, "READY=1\nSTATUS=Running.");
      });
    });
    components.push_back(std::move(database_component));
    reader = std::make_unique<replica::ReplicaReader>(*database);
    auto queue_component = std::make_unique<replica::OutboundQueue>(io, *database, dispatcher);
    queue = queue_component.get();
    after_database.push_back(queue);
    components.push_back(std::move(queue_component));
    alarms::AlarmSettings as;
    as.min_score = config.alarm_min_score_pct / 100.0;
    as.frigate_url = config.frigate_url;
    camera_alarms = std::make_unique<alarms::CameraAlarms>(workers, *reader, *queue, as);
    figures.parts.queue = queue;
    figures.parts.reader = reader.get();
    figures.parts.camera_alarms = camera_alarms.get();
    sync = std::make_unique<replica::SyncDown>(*database, dispatcher);
    sync->on_applied([this](const std::string& entity) {
      reader->refresh();
      if (entity == "banned_visitor") camera_alarms->bans_changed();
      if (lan_api) lan_api->replica_changed(entity);
    });
    wire_updates();
    wire_media();
    wire_lan();
    wire_pairing();
    wire_control();
    wire_cloud();
  }

  // Software updates (§7.6): update.apply, the trial's commit, and the
  // outcomes secbox-recover left, once the queue is up.
  void wire_updates() {
    update::UpdateSettings us;
    us.root = versions;
    us.public_key_file = config.update_key_file;
    us.ca_file = config.cloud_ca_file;
    us.env_file = config.paths.env_file();
    us.bundle_dir = config.paths.state_dir + "/known-good";
    us.running_version = version;
    us.paired = config.paired();
    us.trial = std::chrono::seconds(config.update_trial_s);
    us.deadline = std::chrono::seconds(config.update_deadline_s);
    update::UpdateHooks hooks;
    hooks.permission = [this]() -> Result<void> {
      if (!control) return Error{Errc::unavailable, "cloud control is not running"};
      return control->permission("update", "apply");
    };
    hooks.finish_migrations = [this](std::function<void(Result<void>)> done) {
      database->apply_contract_migrations(std::move(done));
    };
    hooks.restart = [this](const std::string& why) { request_stop(kRestartForUpdate, why); };
    auto service = std::make_unique<update::UpdateService>(io, dispatcher, *queue, std::move(us),
                                                           std::move(hooks));
    updates = service.get();
    after_database.push_back(updates);
    components.push_back(std::move(service));
  }

  // Cameras to HLS: one supervised ffmpeg per camera file.
  void wire_media() {
    media::MediaSettings ms;
    ms.cameras_dir = config.paths.cameras_dir();
    ms.hls_root = config.paths.hls_dir();
    auto service = std::make_unique<media::MediaService>(io, workers, std::move(ms));
    media = service.get();
    figures.parts.media = media;
    components.push_back(std::move(service));
    media::FrigateSettings fs;
    fs.base_url = config.frigate_url;
    auto proxy = std::make_unique<media::FrigateProxy>(io, dispatcher, std::move(fs));
    frigate = proxy.get();
    components.push_back(std::move(proxy));
    // Frigate's detections into the queue: once the database (and so the queue) is up.
    media::FrigateEventsSettings es;
    es.base_url = config.frigate_url;
    es.state_file = config.paths.state_dir + "/frigate-events.json";
    auto events = std::make_unique<media::FrigateEvents>(
        io, workers, *queue, std::move(es), [this](const media::ParsedEvent& e) {
          camera_alarms->seen(alarms::Sighting{e.id, e.camera, e.label, e.plate, e.plate_score,
                                               e.sub_label, e.sub_label_score, e.end_time});
        });
    frigate_events = events.get();
    figures.parts.frigate_events = frigate_events;
    after_database.push_back(frigate_events);
    components.push_back(std::move(events));
  }

  static std::vector<std::string> words(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string w; in >> w;) out.push_back(w);
    return out;
  }

  // Cloud control (§7.1, §7.3–§7.5): compose, registered commands, node
  // control and the health report.
  void wire_control() {
    control::ControlSettings cs = control_settings(config);
    control::ControlHooks hooks;
    wire_control_hooks(hooks);
    auto plane = std::make_unique<control::ControlPlane>(io, dispatcher, *queue, std::move(cs),
                                                         std::move(hooks));
    control = plane.get();
    components.push_back(std::move(plane));
  }

  control::ControlSettings control_settings(const Config& config) {
    control::ControlSettings cs;
    cs.is_daemon_setting = is_daemon_setting;
    cs.compose.command = words(config.compose_cmd);
    cs.compose.env_file = config.paths.env_file();
    cs.compose.legacy_env_file = config.paths.legacy_env_file();
    cs.compose.dir = config.paths.compose_dir();
    if (!config.compose_user.empty()) {
      cs.compose.run_as = lookup_user(config.compose_user);
      if (!cs.compose.run_as) {
        log.warn("COMPOSE_USER names no user; compose runs as the daemon's user.",
                 {{"user", config.compose_user}});
      }
    }
    cs.compose.up_timeout = std::chrono::seconds(config.compose_up_timeout_s);
    cs.compose.health_timeout = std::chrono::seconds(config.compose_health_timeout_s);
    cs.compose.render_check = config.compose_render_check;
    cs.tools_dir = config.paths.tools_dir();
    cs.permissions_file = config.paths.control_file();
    cs.container_cmd = words(config.container_cmd);
    cs.compose.container_command = cs.container_cmd;
    cs.compose.container_host = config.container_host;
    cs.systemctl = words(config.systemctl_cmd);
    cs.journalctl = words(config.journalctl_cmd);
    cs.disk_paths = config.health_disks.empty()
                        ? std::vector<std::string>{"/", config.paths.state_dir}
                        : words(config.health_disks);
    cs.interfaces = words(config.network_interfaces);
    cs.health_interval = std::chrono::seconds(config.health_interval_s);
    return cs;
  }

  void wire_control_hooks(control::ControlHooks& hooks) {
    hooks.health_state = [this] { return figures.health_state(); };
    hooks.rotate_jwt = [this](std::function<void(Result<void>)> done) {
      if (!cloud) return done(Error{Errc::unavailable, "the box is not paired"});
      cloud->rotate_now(std::move(done));
    };
    hooks.env_changed = [this](std::function<void(std::vector<std::string>)> done) {
      reload(std::move(done));
    };
  }

  void wire_lan() {
    // Made (or read) once before the loop runs; the LAN server and the pairing page share it.
    if (!lan_cert.make_now()) return;
    lan::LanApiSettings ls;
    // The guard app beside the running daemon (versions/<v>/web), so that the
    // two switch and roll back together; LAN_WEB_DIR overrides it.
    ls.web_dir = config.web_dir.empty() ? update::web_dir_of_this_binary() : config.web_dir;
    ls.metrics = [this] { return figures.metrics(); };
    ls.metrics_allow = AddressList::parse(config.metrics_allow).value_or(AddressList{});
    ls.metrics_token = config.metrics_token;
    ls.streams = [this] { return media ? media->streams() : nlohmann::json::array(); };
    ls.hls_dir = config.paths.hls_dir();
    ls.live = &live_video;
    ls.sessions_file = config.paths.state_dir + "/lan/sessions.json";
    ls.alarms = camera_alarms.get();
    ls.named_origins = [this] {
      if (!lan_name || lan_name->name().empty() || !lan_name->certificate() ||
          lan_name->certificate()->name != lan_name->name()) {
        return std::string();
      }
      return "https://*." + lan_name->name() + ":" +
             std::to_string(lan_server ? lan_server->port() : config.lan_port);
    };
    lan::BanPhotoSettings bp;
    bp.dir = config.paths.state_dir + "/lan/photos";
    bp.ca_file = config.cloud_ca_file;
    bp.cloud_origins = [this] {
      std::vector<std::string> origins{url_origin(config.cloud_base_url)};
      const auto gateway = url_origin(config.device_gateway_url);
      if (gateway.rfind("wss://", 0) == 0) origins.push_back("https://" + gateway.substr(6));
      return origins;
    };
    ban_photos = std::make_unique<lan::BanPhotos>(io, bp);
    ls.photos = ban_photos.get();
    lan_api = std::make_unique<lan::LanApi>(workers, *reader, *queue, ls,
                                            [this] { return figures.status(); });
    lan_api->load_sessions();  // before the loop runs: guards stay logged in across a restart
    httpd::Settings hs;
    hs.name = "lan";
    hs.label = "LAN server";
    hs.port = config.lan_port;
    hs.cert_pem = lan_cert.current()->cert_pem;
    hs.key_pem = lan_cert.current()->key_pem;
    auto server = std::make_unique<httpd::Server>(io, hs, lan_api->handler());
    lan_server = server.get();
    lan_cert.start([this](const lan::LanCertificate& c) {
      return lan_server && lan_server->use_certificate(c.cert_pem, c.key_pem);
    });
    // The certificate the cloud installs for the box's name (§7.7), served
    // to phones that ask for that name.
    LanNameSettings ns;
    ns.state_dir = config.paths.state_dir;
    ns.roots_file = config.lan_cert_roots_file;
    lan_name = std::make_unique<LanNameKeeper>(
        io, workers, dispatcher, ns, [this](const lan::NamedCertificate* c) {
          if (!lan_server) return false;
          return c ? lan_server->use_named_certificate(c->name, c->chain_pem, c->key_pem)
                   : lan_server->use_named_certificate("", "", "");
        });
    lan_name->load_now();
    figures.sample_now();  // before the loop runs, as the certificate above
    figures.start_sampling();
    figures.parts.lan_cert = &lan_cert;
    figures.parts.lan_name = lan_name.get();
    figures.parts.lan_server = lan_server;
    figures.parts.lan_port = config.lan_port;
    figures.parts.lan_addresses = config.lan_addresses;
    // Served from the replica: up once the database is.
    after_database.push_back(server.get());
    components.push_back(std::move(server));
  }

  // The pairing form: open while unpaired or needs-pairing, 410 once paired.
  void wire_pairing() {
    pairing::PairingSettings ps;
    ps.port = config.pairing_port;
    ps.hostname = host_name();
    ps.version = version;
    ps.ca_file = config.cloud_ca_file;
    ps.allowed_cloud = config.allowed_cloud();
    if (!config.cloud_pin_error.empty()) {
      log.error("The allowed cloud cannot be read: the box pairs with no cloud until it is fixed.",
                {{"reason", config.cloud_pin_error}});
    } else if (ps.allowed_cloud.empty()) {
      log.warn(
          "This box was installed without its cloud (install.sh --cloud URL): it pairs with none.");
    }
    ps.lan_port = config.lan_port;
    ps.paired = config.paired() && tunnel::TokenStore(config.paths.jwt_file()).load().has_value();
    pairing::PairingHooks hooks;
    // Read from the file each time (on a worker): a renewal changes it.
    hooks.lan_fingerprint = [made = lan_cert.current().has_value(),
                             path = config.paths.state_dir +
                                    "/lan/cert.pem"]() -> Result<std::string> {
      if (!made) return Error{Errc::network, "the LAN certificate could not be made (see the log)"};
      auto pem = read_file(path, 1 << 20);
      if (!pem) return pem.error();
      return certificate_sha256(pem.value());
    };
    hooks.addresses = [setting = config.lan_addresses] { return guard_addresses(setting); };
    hooks.named_links = [this] {
      return figures.status()["lan"]["addresses"].get<std::vector<std::string>>();
    };
    hooks.persist = [paths = config.paths](const pairing::QrCode& qr,
                                           const pairing::ClaimOutcome& claimed) {
      return persist_pairing(paths, qr, claimed);
    };
    hooks.on_paired = [this] { on_paired(); };
    auto server =
        std::make_unique<pairing::PairingServer>(io, workers, std::move(ps), std::move(hooks));
    pairing = server.get();
    components.push_back(std::move(server));
  }

  // Blocking (worker): the token first, then the env file that makes the box
  // paired; a failure leaves neither behind (cloud-protocol §2).
  static Result<void> persist_pairing(const Paths& paths, const pairing::QrCode& qr,
                                      const pairing::ClaimOutcome& claimed) {
    auto env = envfile::load(paths.env_file());
    if (!env && env.error().code != Errc::not_found) return env.error();
    envfile::EnvFile file = env ? std::move(env).value() : envfile::EnvFile();
    file.set("DEVICE_ID", qr.device_id);
    file.set("CLOUD_BASE_URL", qr.cloud_base_url);
    file.set("DEVICE_GATEWAY_URL", claimed.gateway_url);
    file.unset("BOOTSTRAP");  // one-time: used now, never again (§3)
    if (auto bad = envfile::serialize(file); !bad) return bad.error();
    if (auto saved = tunnel::TokenStore(paths.jwt_file()).save(claimed.device_jwt); !saved)
      return saved.error();
    if (auto saved = envfile::save(paths.env_file(), file); !saved) {
      ::unlink(paths.jwt_file().c_str());
      return saved.error();
    }
    return ok();
  }

  // Paired through the form: read the new settings and bring the tunnel up,
  // replacing the session of a box that needed pairing again.
  void on_paired() {
    workers.run([env = process_environment()] { return load_config(env); },
                [this](Result<Config> r) {
                  if (stopping) return;
                  if (!r) {
                    log.error("Paired, but the new configuration cannot be read.",
                              {{"reason", r.error().message}});
                    return;
                  }
                  Config next = std::move(r).value();
                  next.database_url = config.database_url;
                  config = std::move(next);
                  figures.needs_pairing = false;
                  replace_cloud();
                });
  }

  // A transport swap: the old session stops, which clears its transport and
  // ends its session under the dispatcher (the components hear that as any
  // disconnection), and the next is made from the new settings. The
  // components and what they registered stay as they are.
  void replace_cloud() {
    if (!cloud) {
      wire_cloud();
      if (cloud && after_database_started) cloud->start();
      return;
    }
    auto* old = cloud;
    old->stop([this, old] {
      // Off the stopped session's own call stack before it is destroyed.
      boost::asio::post(io, [this, old] {
        if (stopping) return;  // the app's stop sequence owns the components now
        after_database.erase(std::remove(after_database.begin(), after_database.end(), old),
                             after_database.end());
        components.erase(
            std::remove_if(components.begin(), components.end(),
                           [old](const std::unique_ptr<Component>& c) { return c.get() == old; }),
            components.end());
        cloud = nullptr;
        figures.cloud = nullptr;
        replace_cloud();
      });
    });
  }

  // The tunnel runs once the box is paired and holds a device token.
  void wire_cloud() {
    if (!config.paired() || config.device_gateway_url.empty()) {
      log.info(
          "Not paired (no DEVICE_ID, CLOUD_BASE_URL and DEVICE_GATEWAY_URL); the tunnel stays "
          "down.");
      return;
    }
    // A small file read before the loop runs.
    auto token = tunnel::TokenStore(config.paths.jwt_file()).load();
    if (!token) {
      log.warn("Paired, but there is no device token; the box needs pairing again.",
               {{"reason", token.error().message}});
      figures.needs_pairing = true;
      return;
    }
    tunnel::SessionSettings s;
    s.tunnel.gateway_url = config.device_gateway_url;
    s.tunnel.device_id = config.device_id;
    s.tunnel.version = version;
    s.tunnel.ca_file = config.cloud_ca_file;
    s.rotator.cloud_base_url = config.cloud_base_url;
    s.rotator.ca_file = config.cloud_ca_file;
    s.rotator.token_path = config.paths.jwt_file();
    s.boot_id = boot_id;
    auto session = std::make_unique<tunnel::CloudSession>(io, workers, dispatcher, *clock,
                                                          std::move(s), token.value());
    cloud = session.get();
    figures.cloud = cloud;
    cloud->on_needs_pairing([this] {
      log.error("The cloud no longer accepts this box's token; it needs pairing again.");
      figures.needs_pairing = true;
      if (pairing) pairing->reopen();
    });
    cloud->set_hello_source([this] {
      tunnel::HelloState h;
      h.cursors = reader->cursors();
      h.queue_depth = queue->stats().depth;
      h.oldest_at = queue->stats().oldest_at;
      return h;
    });
    after_database.push_back(cloud);
    components.push_back(std::move(session));
  }

  // systemd's watchdog (WatchdogSec=) is fed from the loop itself, so a loop
  // that stops turning stops feeding it and systemd restarts the box.
  void feed_watchdog() {
    std::uint64_t usec = 0;
    if (::sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return;
    ::sd_notify(0, "WATCHDOG=1");
    watchdog.expires_after(std::chrono::microseconds(usec / 2));
    watchdog.async_wait([this](boost::system::error_code ec) {
      if (!ec && !stopping) feed_watchdog();
    });
  }

  void wait_for_signal() {
    signals.async_wait([this](boost::system::error_code ec, int signo) {
      if (ec) return;
      if (signo == SIGHUP) {
        on_sighup();
      } else {
        request_stop(0, signo == SIGTERM ? "SIGTERM" : "SIGINT");
      }
      if (!stopping) wait_for_signal();
    });
  }

  void on_sighup() {
    log.info("SIGHUP received; re-reading the configuration.");
    if (control) control->reload();
    reload();
  }

  // Re-reads the configuration (off the loop) and applies what a running box
  // can: logging and cloud control at once. Every other changed key is named
  // in the log, and to `done`, as taking effect at the next restart.
  void reload(std::function<void(std::vector<std::string>)> done = {}) {
    workers.run([env = process_environment()] { return load_config(env); },
                [this, done = std::move(done)](Result<Config> r) {
                  if (stopping) return;
                  if (!r) {
                    log.error("The new configuration is invalid; keeping the current one.",
                              {{"reason", r.error().message}});
                    if (done) done({});
                    return;
                  }
                  Config next = std::move(r).value();
                  std::vector<std::string> now;
                  std::vector<std::string> at_restart;
                  for (auto& key : changed_keys(config, next)) {
                    (applies_without_restart(key) ? now : at_restart).push_back(std::move(key));
                  }
                  if (next.database_url != config.database_url)
                    next.database_url = config.database_url;
                  auto joined = [](const std::vector<std::string>& keys) {
                    std::string out;
                    for (const auto& k : keys) out += (out.empty() ? "" : " ") + k;
                    return out;
                  };
                  // Logged before the new level applies, so it is seen even when raised.
                  log.info("Configuration reloaded.", {{"paired", next.paired()},
                                                       {"log_level", next.log_level},
                                                       {"applied", joined(now)}});
                  if (!at_restart.empty()) {
                    log.warn("Some changed settings take effect only at the next restart.",
                             {{"keys", joined(at_restart)}});
                  }
                  configure_logging(next);
                  // The running components keep what they were built with,
                  // except those that can take new settings now.
                  if (control) control->reconfigure(control_settings(next));
                  // What the running components were built with stays the
                  // reference for the next comparison: a key waiting for a
                  // restart is named again until then.
                  for (const auto& key : now) apply_setting(key, next, config);
                  if (done) done(at_restart);
                });
  }

  void request_stop(int code, const std::string& why) {
    if (stopping) return;
    stopping = true;
    exit_code = code;
    log.info("Stopping (" + why + ").");
    ::sd_notify(0, "STOPPING=1");
    signals.cancel();
    watchdog.cancel();
    lan_cert.stop();
    if (lan_name) lan_name->stop();
    if (ban_photos) ban_photos->stop();  // a fetch in flight ends within a second
    figures.stop();
    stop_deadline.expires_after(kStopDeadline);
    stop_deadline.async_wait([this](boost::system::error_code ec) {
      if (ec) return;
      log.error("Components did not stop within 4.5 s; exiting anyway.");
      std::_Exit(exit_code == 0 ? 1 : exit_code);
    });
    stop_next(components.size());
  }

  // Stops components[0, n) in reverse, one after the other.
  void stop_next(std::size_t n) {
    if (n == 0) {
      stop_deadline.cancel();
      log.info("Stopped.");
      return;
    }
    Component& c = *components[n - 1];
    c.stop([this, n] { stop_next(n - 1); });
  }
};

App::App(Config config) : impl_(std::make_unique<Impl>(std::move(config))) {}
App::~App() = default;

int App::run() {
  auto& i = *impl_;
  i.log.info("Starting secbox.",
             {{"version", i.version},
              {"versions_dir", i.versions},
              {"pid", static_cast<int>(::getpid())},
              {"etc_dir", i.config.paths.etc_dir},
              {"state_dir", i.config.paths.state_dir},
              {"database", i.config.database_url.empty() ? "embedded" : "external"}});
  // A reader that went away (`secbox run | tee log`, stopped) must cost the
  // box its log lines, not its life: writes then fail with EPIPE instead.
  ::signal(SIGPIPE, SIG_IGN);
  i.wire();
  i.wait_for_signal();
  i.feed_watchdog();
  for (auto& c : i.components) {
    if (std::find(i.after_database.begin(), i.after_database.end(), c.get()) ==
        i.after_database.end())
      c->start();
  }
  // Input meets the code at two boundaries that catch what a handler throws
  // and lose only that piece of work: the dispatcher (a cloud message, which
  // is answered `error internal`) and the HTTP server (a request, answered
  // 500). An exception that reaches the loop is a bug in the box's own
  // state, which running on would carry along: the box says so and ends
  // with EX_SOFTWARE, and systemd starts it again clean (Restart=on-failure;
  // the queue and the replica are on disk).
  try {
    i.io.run();
  } catch (const std::exception& ex) {
    i.log.error(
        "An event handler failed outside the request boundaries; the box stops to start again "
        "clean.",
        {{"reason", std::string(ex.what()).substr(0, 200)}});
    return kBug;
  } catch (...) {
    i.log.error(
        "An event handler failed outside the request boundaries; the box stops to start again "
        "clean.",
        {{"reason", "an exception that is not a std::exception"}});
    return kBug;
  }
  return i.exit_code;
}

}  // namespace secbox::appliance
