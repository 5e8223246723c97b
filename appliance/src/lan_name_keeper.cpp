#include "lan_name_keeper.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include <boost/asio/steady_timer.hpp>

#include "common/atomic_file.hpp"
#include "common/certificates.hpp"
#include "common/log.hpp"
#include "common/time.hpp"

namespace secbox::appliance {

using json = nlohmann::json;
using Clock = std::chrono::system_clock;

struct LanNameKeeper::Impl : std::enable_shared_from_this<Impl> {
  Impl(boost::asio::io_context& io, BlockingPool& w, LanNameSettings s, Use u)
      : workers(w), settings(std::move(s)), use(std::move(u)), timer(io) {}

  BlockingPool& workers;
  LanNameSettings settings;
  Use use;
  boost::asio::steady_timer timer;
  log::Logger log{"lan.cert"};
  protocol::Router* router = nullptr;
  std::string name;
  std::optional<lan::NamedCertificate> cert;
  std::string problem;
  bool requesting = false;  // a key being made or a request waiting for its answer
  bool stopped = false;
  std::chrono::seconds retry{0};  // the back-off after a failed request
  std::chrono::steady_clock::time_point next_try{};

  std::string dir() const { return settings.state_dir + "/lan"; }
  std::string name_file() const { return dir() + "/name"; }
  std::string cert_file() const { return dir() + "/named.pem"; }
  std::string key_file() const { return dir() + "/named-request.key"; }

  bool due() const {
    if (name.empty()) return false;
    return !cert || cert->name != name || cert->renewal_due(Clock::now());
  }

  void schedule() {
    if (stopped) return;
    const auto now = std::chrono::steady_clock::now();
    auto at = now + settings.check_every;
    if (due() && next_try > now) at = std::min(at, next_try);
    timer.expires_at(at);
    timer.async_wait([weak = weak_from_this()](boost::system::error_code ec) {
      auto self = weak.lock();
      if (ec || !self || self->stopped) return;
      self->maybe_request();
      self->schedule();
    });
  }

  void failed(const std::string& why) {
    problem = why;
    retry = retry.count() == 0 ? settings.first_retry : std::min(retry * 2, settings.last_retry);
    next_try = std::chrono::steady_clock::now() + retry;
    log.warn("The LAN certificate request did not go through; asking again later.",
             {{"reason", why}, {"retry_s", static_cast<std::int64_t>(retry.count())}});
    schedule();
  }

  void maybe_request() {
    if (stopped || requesting || !router->in_session() || !due() ||
        std::chrono::steady_clock::now() < next_try)
      return;
    requesting = true;
    // The key and its request, made and kept on a worker (key generation, fsync).
    workers.run(
        [n = name, path = key_file(), d = dir()]() -> Result<std::string> {
          ::mkdir(d.c_str(), 0700);
          auto made = make_request(n, lan::lan_cert_names(n));
          if (!made) return made.error();
          if (auto saved = write_file_atomically(path, made.value().key_pem, {0600, std::nullopt});
              !saved) {
            return saved.error();
          }
          return made.value().csr_pem;
        },
        [weak = weak_from_this()](Result<std::string> csr) {
          auto self = weak.lock();
          if (!self || self->stopped) return;
          if (!csr) {
            self->requesting = false;
            return self->failed("the key or its request could not be made: " + csr.error().message);
          }
          self->send_request(csr.value());
        });
  }

  void send_request(const std::string& csr) {
    const auto sent = router->request(
        "lan_cert.request", json{{"csr", csr}},
        std::chrono::duration_cast<std::chrono::milliseconds>(settings.request_timeout),
        [weak = weak_from_this()](Result<protocol::Envelope> answer) {
          auto self = weak.lock();
          if (!self || self->stopped) return;
          self->requesting = false;
          if (!answer) return self->failed(answer.error().message);
          // Acknowledged: the cloud installs the chain later. Asked again
          // only if it has not after a while.
          self->retry = std::chrono::seconds(0);
          self->problem.clear();
          self->next_try = std::chrono::steady_clock::now() + self->settings.after_ack;
          self->log.info("The cloud took the LAN certificate request.", {{"name", self->name}});
          self->schedule();
        });
    if (!sent) requesting = false;  // the session went down; the next welcome asks again
  }

  void install(const protocol::Envelope& req, protocol::Reply reply) {
    const auto chain = req.payload.value("chain", json());
    if (!chain.is_string())
      return reply.error(protocol::ErrorCode::invalid_args, "chain must be PEM text");
    workers.run(
        [chain = chain.get<std::string>(), n = name, key = key_file(), roots = settings.roots_file,
         path = cert_file()]() -> Result<lan::NamedCertificate> {
          auto key_pem = read_file(key, 64 * 1024);
          if (!key_pem)
            return Error{Errc::invalid,
                         "key: the box has made no request to match this chain against"};
          if (n.empty())
            return Error{Errc::invalid, "names: the cloud has given the box no LAN name"};
          auto checked = lan::check_chain(chain, key_pem.value(), n, roots, Clock::now());
          if (!checked) return checked.error();
          if (auto saved = lan::save_named(path, checked.value()); !saved) return saved.error();
          return checked;
        },
        [weak = weak_from_this(),
         reply = std::move(reply)](Result<lan::NamedCertificate> r) mutable {
          auto self = weak.lock();
          if (!self || self->stopped) return;
          if (!r) {
            self->problem = r.error().message;
            self->log.warn("Refused a LAN certificate from the cloud; serving what the box had.",
                           {{"reason", r.error().message}});
            return reply.error(r.error());
          }
          if (!self->use(&r.value())) {
            return reply.error(protocol::ErrorCode::internal,
                               "the LAN server could not use the certificate");
          }
          self->cert = std::move(r).value();
          self->problem.clear();
          self->retry = std::chrono::seconds(0);
          self->next_try = {};  // its renewal is due when a third of its life is left
          self->log.info(
              "Serving the LAN certificate the cloud installed.",
              {{"name", self->cert->name}, {"not_after", format_rfc3339(self->cert->not_after)}});
          reply.send("ack");
          self->schedule();
        });
  }

  // A welcome (its payload): its lan.name, and a request when one is due.
  void welcomed(const json& welcome) {
    const auto lan = welcome.value("lan", json());
    const std::string given = lan.is_object() && lan.value("name", json()).is_string()
                                  ? lan["name"].get<std::string>()
                                  : "";
    if (!given.empty() && !lan::valid_lan_name(given)) {
      log.warn("The cloud gave a LAN name that is not a DNS name; ignored.");
      return;
    }
    if (given != name) {
      name = given;
      retry = std::chrono::seconds(0);
      next_try = {};
      workers.run(
          [path = name_file(), d = dir(), given] {
            ::mkdir(d.c_str(), 0700);
            if (given.empty()) {
              ::unlink(path.c_str());
              return Result<void>(ok());
            }
            return write_file_atomically(path, given + "\n", {0600, std::nullopt});
          },
          [](Result<void>) {});
      // A certificate for another name is not this box's any more.
      if (cert && cert->name != given) {
        use(nullptr);
        cert.reset();
      }
      if (!given.empty()) log.info("The cloud gave the box a LAN name.", {{"name", given}});
    }
    maybe_request();
    schedule();
  }
};

LanNameKeeper::LanNameKeeper(boost::asio::io_context& io, BlockingPool& workers,
                             protocol::Router& router, LanNameSettings settings, Use use)
    : impl_(std::make_shared<Impl>(io, workers, std::move(settings), std::move(use))) {
  impl_->router = &router;
  std::weak_ptr<Impl> weak = impl_;
  router.on_request("lan_cert.install",
                    [weak](const protocol::Envelope& req, protocol::Reply reply) {
                      if (auto self = weak.lock(); self && !self->stopped)
                        self->install(req, std::move(reply));
                    });
  router.on_session({[weak](const json& welcome) {
                       if (auto self = weak.lock(); self && !self->stopped) self->welcomed(welcome);
                     },
                     nullptr});
}

LanNameKeeper::~LanNameKeeper() { stop(); }

void LanNameKeeper::load_now() {
  auto& i = *impl_;
  if (auto n = read_file(i.name_file(), 1024); n) {
    std::string text = n.value();
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    if (lan::valid_lan_name(text)) i.name = text;
  }
  auto kept = lan::load_named(i.cert_file(), i.settings.roots_file, Clock::now());
  if (kept) {
    if (i.use(&kept.value())) i.cert = std::move(kept).value();
  } else if (kept.error().code != Errc::not_found) {
    i.problem = kept.error().message;
    i.log.warn("The kept LAN certificate is not served.", {{"reason", kept.error().message}});
  }
}

void LanNameKeeper::stop() {
  impl_->stopped = true;
  impl_->timer.cancel();
}

const std::string& LanNameKeeper::name() const { return impl_->name; }
const std::optional<lan::NamedCertificate>& LanNameKeeper::certificate() const {
  return impl_->cert;
}
const std::string& LanNameKeeper::last_problem() const { return impl_->problem; }

}  // namespace secbox::appliance
