#include "pairing/pairing_server.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>
#include <set>

#include <boost/asio/ip/address.hpp>

#include "common/listen.hpp"
#include "common/log.hpp"
#include "lan/certificate.hpp"
#include "form_token.hpp"
#include "page.hpp"

namespace secbox::pairing {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using json = nlohmann::json;
using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

constexpr std::size_t kBodyLimit = 8 * 1024;
constexpr std::size_t kHeaderLimit = 8 * 1024;
constexpr std::size_t kMaxConnections = 16;
constexpr auto kRequestTime = std::chrono::seconds(30);

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string form_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

// The value of one field of an application/x-www-form-urlencoded body.
std::optional<std::string> form_field(std::string_view body, std::string_view name) {
  while (!body.empty()) {
    auto amp = body.find('&');
    auto pair = body.substr(0, amp);
    auto eq = pair.find('=');
    if (form_decode(pair.substr(0, eq)) == name) {
      return eq == std::string_view::npos ? std::string() : form_decode(pair.substr(eq + 1));
    }
    if (amp == std::string_view::npos) break;
    body.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

std::string lowercase(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Whether a Host header names this box: an IP literal (IPv6 in brackets),
// localhost, or the box's own name, bare or under .local, .lan or .home.arpa;
// with or without a port. Any other name is how DNS rebinding reaches a LAN
// device from a web page: such a page could read the form and post it.
bool host_is_the_box(std::string host, const std::string& hostname) {
  host = lowercase(std::move(host));
  std::string name = host;
  if (!host.empty() && host[0] == '[') {
    const auto close = host.find(']');
    if (close == std::string::npos) return false;
    const std::string rest = host.substr(close + 1);
    if (!rest.empty() && (rest[0] != ':' || rest.size() < 2 || rest.find_first_not_of("0123456789", 1) != std::string::npos)) {
      return false;
    }
    boost::system::error_code ec;
    boost::asio::ip::make_address_v6(host.substr(1, close - 1), ec);
    return !ec;
  }
  if (const auto colon = host.rfind(':'); colon != std::string::npos) {
    const std::string port = host.substr(colon + 1);
    if (port.empty() || port.find_first_not_of("0123456789") != std::string::npos) return false;
    name = host.substr(0, colon);
  }
  boost::system::error_code ec;
  boost::asio::ip::make_address_v4(name, ec);
  if (!ec) return true;
  if (name == "localhost") return true;
  const std::string own = lowercase(hostname);
  if (own.empty()) return false;
  for (const char* suffix : {"", ".local", ".lan", ".home.arpa"}) {
    if (name == own + suffix) return true;
  }
  return false;
}

}  // namespace

class Session;

struct PairingServer::Impl : std::enable_shared_from_this<PairingServer::Impl> {
  Impl(asio::io_context& io, BlockingPool& workers, PairingSettings s, PairingHooks h)
      : io(io), workers(workers), settings(std::move(s)), hooks(std::move(h)), acceptor(io) {
    paired = settings.paired;
    needs_pairing = settings.needs_pairing;
  }

  asio::io_context& io;
  BlockingPool& workers;
  PairingSettings settings;
  PairingHooks hooks;
  tcp::acceptor acceptor;
  log::Logger log{"pairing"};
  FormTokens tokens;
  std::set<std::shared_ptr<Session>> sessions;
  std::string fingerprint;  // display form
  std::vector<std::string> addresses;
  bool paired = false;
  bool needs_pairing = false;
  bool claim_in_flight = false;
  bool stopped = false;
  int bound_port = 0;

  void start();
  void accept();
  void refresh_box_facts();
  PageModel model() const {
    PageModel m;
    m.hostname = settings.hostname;
    m.addresses = addresses;
    m.fingerprint = fingerprint;
    m.lan_port = settings.lan_port;
    m.needs_pairing = needs_pairing;
    m.cloud = settings.allowed_cloud;
    m.form_token = tokens.issue();
    return m;
  }
  void handle(const Request& req, std::function<void(Response)> reply);
  void pair(const Request& req, bool wants_json, std::function<void(Response)> reply);
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, std::shared_ptr<PairingServer::Impl> server)
      : stream_(std::move(socket)), server_(std::move(server)) {}

  void run() { read(); }
  void close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.close();
  }

 private:
  void read() {
    parser_.emplace();
    parser_->body_limit(kBodyLimit);
    parser_->header_limit(kHeaderLimit);
    stream_.expires_after(kRequestTime);
    http::async_read(stream_, buffer_, *parser_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      self->on_read(ec);
    });
  }

  void on_read(beast::error_code ec) {
    if (ec == http::error::body_limit || ec == http::error::header_limit) {
      Response res{ec == http::error::body_limit ? http::status::payload_too_large
                                                 : http::status::request_header_fields_too_large,
                   11};
      res.set(http::field::content_type, "text/plain; charset=utf-8");
      res.body() = ec == http::error::body_limit ? "The request is larger than 8 KiB; paste only the QR code's content.\n"
                                                 : "The request's headers are larger than 8 KiB.\n";
      res.keep_alive(false);
      return write(std::move(res));
    }
    if (ec) return finish();
    const bool keep = parser_->get().keep_alive();
    const bool head_only = parser_->get().method() == http::verb::head;
    stream_.expires_never();  // a claim may take the cloud's time
    server_->handle(parser_->get(), [self = shared_from_this(), keep, head_only](Response res) {
      res.keep_alive(keep && res.keep_alive());
      self->write(std::move(res), head_only);
    });
  }

  // head_only: the headers a GET would get, no body (a body after a HEAD
  // answer is read as the next response on a kept-alive connection).
  void write(Response res, bool head_only = false) {
    res.set(http::field::server, "secbox");
    res.set(http::field::cache_control, "no-store");
    res.set("X-Content-Type-Options", "nosniff");
    res.set("X-Frame-Options", "DENY");
    // same-origin, not no-referrer: under no-referrer a browser sends the
    // form's own post with "Origin: null", which reads as cross-site.
    res.set("Referrer-Policy", "same-origin");
    res.set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'");
    res.prepare_payload();
    if (head_only) {
      const auto length = res.body().size();
      res.body().clear();
      res.content_length(length);
    }
    auto shared = std::make_shared<Response>(std::move(res));
    stream_.expires_after(kRequestTime);
    http::async_write(stream_, *shared, [self = shared_from_this(), shared](beast::error_code ec, std::size_t) {
      if (ec || !shared->keep_alive() || self->server_->stopped) return self->finish();
      self->read();
    });
  }

  void finish() {
    close();
    server_->sessions.erase(shared_from_this());
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::shared_ptr<PairingServer::Impl> server_;
};

void PairingServer::Impl::start() {
  if (auto listening = open_listener(acceptor, settings.bind_address, settings.port); !listening) {
    log.error("The pairing form cannot listen.", {{"reason", listening.error().message}});
    return;
  }
  bound_port = acceptor.local_endpoint().port();
  refresh_box_facts();
  if (paired) {
    log.info("Pairing is closed (the box is paired); the port answers 410 Gone.", {{"port", bound_port}});
  } else {
    log.info("Pairing form ready.", {{"port", bound_port}});
  }
  accept();
}

void PairingServer::Impl::refresh_box_facts() {
  auto self = shared_from_this();
  workers.run(
      [hooks = hooks] {
        std::pair<Result<std::string>, std::vector<std::string>> facts{
            hooks.lan_fingerprint ? hooks.lan_fingerprint() : Result<std::string>(std::string()),
            hooks.addresses ? hooks.addresses() : std::vector<std::string>{}};
        return facts;
      },
      [self](std::pair<Result<std::string>, std::vector<std::string>> facts) {
        if (facts.first) {
          self->fingerprint = lan::fingerprint_for_display(facts.first.value());
        } else {
          self->log.error("The LAN certificate could not be made.", {{"reason", facts.first.error().message}});
        }
        self->addresses = std::move(facts.second);
        if (!self->paired && !self->addresses.empty()) {
          std::string urls;
          for (const auto& a : self->addresses) {
            urls += (urls.empty() ? "" : " ") + std::string("http://") +
                    (a.find(':') != std::string::npos ? "[" + a + "]" : a) + ":" + std::to_string(self->bound_port) + "/";
          }
          self->log.info("Pair this box at " + urls);
        }
      });
}

void PairingServer::Impl::accept() {
  acceptor.async_accept([self = shared_from_this()](beast::error_code ec, tcp::socket socket) {
    if (ec || self->stopped) return;
    if (self->sessions.size() >= kMaxConnections) {
      beast::error_code ignored;
      socket.close(ignored);  // a full house: the browser retries
    } else {
      auto s = std::make_shared<Session>(std::move(socket), self);
      self->sessions.insert(s);
      s->run();
    }
    self->accept();
  });
}

void PairingServer::Impl::handle(const Request& req, std::function<void(Response)> reply) {
  const std::string target(req.target());
  const std::string path = target.substr(0, target.find('?'));
  const std::string type(req[http::field::content_type]);
  const bool wants_json = type.rfind("application/json", 0) == 0 ||
                          std::string(req[http::field::accept]).find("application/json") != std::string::npos;
  auto page = [&](http::status status, std::string html) {
    Response res{status, req.version()};
    res.set(http::field::content_type, "text/html; charset=utf-8");
    res.body() = std::move(html);
    return res;
  };
  auto json_reply = [&](http::status status, const json& body) {
    Response res{status, req.version()};
    res.set(http::field::content_type, "application/json");
    res.body() = body.dump() + "\n";
    return res;
  };
  if (req.count(http::field::host) && !host_is_the_box(std::string(req[http::field::host]), settings.hostname)) {
    log.warn("A request for another host name was refused (the box answers only to its own addresses and name).");
    Response res{http::status::misdirected_request, req.version()};
    res.set(http::field::content_type, "text/plain; charset=utf-8");
    res.body() = "This box answers only to its own address or name (" + settings.hostname +
                 ".local). Open it by its address.\n";
    res.keep_alive(false);
    return reply(std::move(res));
  }
  if (path != "/" && path != "/pair") {
    return reply(json_reply(http::status::not_found, {{"error", "not_found"}, {"hint", "The pairing form is at /"}}));
  }
  if (req.method() == http::verb::post) {
    // A browser names the page a post comes from: only the form's own page
    // may pair the box (a page elsewhere that a guard's phone opens may not).
    const std::string origin = lowercase(std::string(req[http::field::origin]));
    const std::string fetch_site = lowercase(std::string(req["Sec-Fetch-Site"]));
    const bool cross_site =
        req.count(http::field::origin)
            ? origin != "http://" + lowercase(std::string(req[http::field::host]))
            : !fetch_site.empty() && fetch_site != "same-origin" && fetch_site != "none";
    if (cross_site) {
      log.warn("A cross-site post to the pairing form was refused.", {{"origin", origin.substr(0, 200)}});
      return reply(json_reply(http::status::forbidden,
                              {{"error", "cross_site"},
                               {"message", "Pairing is done from this box's own form, not from another site."}}));
    }
  }
  if (paired) {
    auto m = model();
    if (wants_json) {
      return reply(json_reply(http::status::gone, {{"error", "paired"}, {"lanUrls", lan_links(m)}}));
    }
    return reply(page(http::status::gone, render_gone(m)));
  }
  if (path == "/" && (req.method() == http::verb::get || req.method() == http::verb::head)) {
    return reply(page(http::status::ok, render_form(model())));
  }
  if (path == "/pair" && req.method() == http::verb::post) return pair(req, wants_json, std::move(reply));
  Response res{http::status::method_not_allowed, req.version()};
  res.set(http::field::allow, path == "/" ? "GET, HEAD" : "POST");
  res.set(http::field::content_type, "text/plain; charset=utf-8");
  res.body() = "Use GET / for the form and POST /pair to pair.\n";
  reply(std::move(res));
}

void PairingServer::Impl::pair(const Request& req, bool wants_json, std::function<void(Response)> reply) {
  const std::string type(req[http::field::content_type]);
  auto respond = [this, wants_json, version = req.version(), reply](http::status status, PageModel m,
                                                                   const std::string& error) {
    Response res{status, version};
    if (wants_json) {
      json body{{"error", error}};
      if (!m.banner.empty()) body["message"] = m.banner;
      if (!m.errors.empty()) {
        body["fields"] = json::array();
        for (const auto& e : m.errors) body["fields"].push_back({{"field", e.field}, {"message", e.message}});
      }
      res.set(http::field::content_type, "application/json");
      res.body() = body.dump() + "\n";
    } else {
      res.set(http::field::content_type, "text/html; charset=utf-8");
      res.body() = render_form(m);
    }
    reply(std::move(res));
  };

  PageModel m = model();
  std::string text;
  if (type.rfind("application/json", 0) == 0) {
    text = req.body();
  } else if (type.rfind("application/x-www-form-urlencoded", 0) == 0) {
    text = form_field(req.body(), "qr").value_or("");
    if (!tokens.valid(form_field(req.body(), "form").value_or(""))) {
      m.text = text;
      m.banner = "This form was opened too long ago (or before the box restarted). Press the button again: the "
                 "pasted text is still here.";
      log.info("A form post without a valid form token was refused.");
      return respond(http::status::forbidden, m, "form_expired");
    }
  } else {
    m.banner = "Send the QR code's content from the form (or as application/json).";
    return respond(http::status::unsupported_media_type, m, "unsupported_media_type");
  }
  m.text = text;
  auto parsed = parse_qr(text);
  if (auto* errors = std::get_if<std::vector<FieldError>>(&parsed)) {
    m.errors = *errors;
    log.info("A pasted QR code was refused.", {{"fields", [&] {
                                                   std::string f;
                                                   for (const auto& e : *errors) f += (f.empty() ? "" : ",") + e.field;
                                                   return f;
                                                 }()}});
    return respond(http::status::bad_request, m, "invalid_qr");
  }
  if (auto foreign = check_allowed_cloud(std::get<QrCode>(parsed), settings.allowed_cloud); !foreign.empty()) {
    m.errors = foreign;
    log.warn("A QR code for another cloud was refused; no claim was made.",
             {{"cloud", std::get<QrCode>(parsed).cloud_base_url.substr(0, 200)},
              {"allowed_cloud", settings.allowed_cloud}});
    return respond(http::status::bad_request, m, "foreign_cloud");
  }
  if (claim_in_flight) {
    m.banner = "A pairing is already in progress. Wait a few seconds, then reload this page.";
    return respond(http::status::too_many_requests, m, "busy");
  }
  claim_in_flight = true;
  QrCode qr = std::get<QrCode>(std::move(parsed));
  log::add_transient_secret(qr.bootstrap_token);
  log.info("Claiming the box from the cloud.", {{"device_id", qr.device_id}, {"cloud", qr.cloud_base_url}});
  ClaimRequest cr{qr, settings.hostname, settings.version, "", settings.ca_file, settings.claim_timeout};
  struct Done {
    ClaimOutcome outcome;
    Result<void> saved = ok();
  };
  workers.run(
      [cr, hooks = hooks]() mutable {
        Done d;
        auto fp = hooks.lan_fingerprint ? hooks.lan_fingerprint() : Result<std::string>(std::string());
        if (!fp) {
          d.outcome.kind = ClaimOutcome::Kind::refused;
          d.outcome.message = "The box could not make its LAN certificate: " + fp.error().message;
          return d;
        }
        cr.lan_cert_sha256 = fp.value();
        d.outcome = claim(cr);
        if (d.outcome.kind == ClaimOutcome::Kind::paired) {
          log::add_transient_secret(d.outcome.device_jwt);
          d.saved = hooks.persist(cr.qr, d.outcome);
        }
        return d;
      },
      [self = shared_from_this(), m, qr, respond, reply, wants_json, version = req.version()](Done d) mutable {
        self->claim_in_flight = false;
        if (self->stopped) return;
        using Kind = ClaimOutcome::Kind;
        if (d.outcome.kind == Kind::paired && d.saved) {
          self->paired = true;
          self->needs_pairing = false;
          self->log.info("Paired with the cloud.", {{"device_id", qr.device_id}});
          auto pm = self->model();
          Response res{http::status::ok, version};
          if (wants_json) {
            res.set(http::field::content_type, "application/json");
            res.body() = json{{"status", "paired"}, {"deviceId", qr.device_id}, {"lanUrls", lan_links(pm)}}.dump() + "\n";
          } else {
            res.set(http::field::content_type, "text/html; charset=utf-8");
            res.body() = render_paired(pm, qr.device_id);
          }
          reply(std::move(res));
          if (self->hooks.on_paired) self->hooks.on_paired();
          return;
        }
        if (d.outcome.kind == Kind::paired) {
          self->log.error("Paired, but the box could not save its settings; nothing was kept.",
                          {{"reason", d.saved.error().message}});
          m.banner = "The cloud accepted the box, but it could not save its settings (" + d.saved.error().message +
                     "). Nothing was kept; ask for a new QR code once this is fixed.";
          return respond(http::status::internal_server_error, m, "not_saved");
        }
        self->log.warn("The claim did not succeed.", {{"device_id", qr.device_id}, {"reason", d.outcome.message}});
        m.banner = d.outcome.message;
        switch (d.outcome.kind) {
          case Kind::token_rejected: return respond(http::status::forbidden, m, "token_rejected");
          case Kind::refused: return respond(http::status::bad_request, m, "refused");
          default: return respond(http::status::bad_gateway, m, "cloud_unreachable");
        }
      });
}

PairingServer::PairingServer(asio::io_context& io, BlockingPool& workers, PairingSettings settings,
                             PairingHooks hooks)
    : impl_(std::make_shared<Impl>(io, workers, std::move(settings), std::move(hooks))) {}

PairingServer::~PairingServer() { impl_->stopped = true; }

void PairingServer::start() { impl_->start(); }

void PairingServer::stop(std::function<void()> on_stopped) {
  impl_->stopped = true;
  beast::error_code ec;
  impl_->acceptor.close(ec);
  auto sessions = impl_->sessions;
  for (const auto& s : sessions) s->close();
  impl_->sessions.clear();
  asio::post(impl_->io, std::move(on_stopped));
}

void PairingServer::reopen() {
  if (!impl_->paired) {
    impl_->needs_pairing = true;
    return;
  }
  impl_->paired = false;
  impl_->needs_pairing = true;
  impl_->log.warn("The pairing form is open again (the box needs pairing).", {{"port", impl_->bound_port}});
}

bool PairingServer::paired() const { return impl_->paired; }
void PairingServer::set_lan_port(int port) {
  if (port > 0) impl_->settings.lan_port = port;
}
int PairingServer::port() const { return impl_->bound_port; }

}  // namespace secbox::pairing
