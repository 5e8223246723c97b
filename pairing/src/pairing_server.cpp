#include "pairing/pairing_server.hpp"

#include <boost/asio/ip/address.hpp>
#include <boost/asio/post.hpp>
#include <nlohmann/json.hpp>

#include "common/log.hpp"
#include "form_token.hpp"
#include "httpd/server.hpp"
#include "common/hex.hpp"
#include "page.hpp"

namespace secbox::pairing {
namespace {

namespace asio = boost::asio;
using json = nlohmann::json;
using httpd::Request;
using httpd::Response;

// What the form's server allows (the header comment's limits).
httpd::Settings server_settings(const PairingSettings& s) {
  httpd::Settings h;
  h.name = "pairing";
  h.label = "";  // the form says itself whether it is open or closed
  h.bind_address = s.bind_address;
  h.port = s.port;
  h.header_limit = 8 * 1024;
  h.body_limit = 8 * 1024;
  h.max_connections = 16;
  h.max_per_address = 8;
  h.request_time = std::chrono::seconds(30);
  h.idle_time = std::chrono::seconds(30);
  h.default_headers = {
      {"Cache-Control", "no-store"},
      {"X-Content-Type-Options", "nosniff"},
      {"X-Frame-Options", "DENY"},
      // same-origin, not no-referrer: under no-referrer a browser sends the
      // form's own post with "Origin: null", which reads as cross-site.
      {"Referrer-Policy", "same-origin"},
      {"Content-Security-Policy",
       "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"},
  };
  h.refusal = [](int status) {
    Response r;
    r.status = status;
    r.content_type = "text/plain; charset=utf-8";
    r.body = status == 413 ? "The request is larger than 8 KiB; paste only the QR code's content.\n"
             : status == 431 ? "The request's headers are larger than 8 KiB.\n"
             : status == 500 ? "The box could not answer this request; try again.\n"
                             : "The request is not valid HTTP/1.1.\n";
    return r;
  };
  return h;
}

Response answer(int status, std::string content_type, std::string body) {
  Response r;
  r.status = status;
  r.content_type = std::move(content_type);
  r.body = std::move(body);
  return r;
}

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
    } else if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 &&
               hex_value(s[i + 2]) >= 0) {
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
    if (!rest.empty() && (rest[0] != ':' || rest.size() < 2 ||
                          rest.find_first_not_of("0123456789", 1) != std::string::npos)) {
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

struct PairingServer::Impl : std::enable_shared_from_this<PairingServer::Impl> {
  Impl(asio::io_context& io, BlockingPool& workers, PairingSettings s, PairingHooks h)
      : io(io), workers(workers), settings(std::move(s)), hooks(std::move(h)) {
    paired = settings.paired;
    needs_pairing = settings.needs_pairing;
  }

  asio::io_context& io;
  BlockingPool& workers;
  PairingSettings settings;
  PairingHooks hooks;
  std::unique_ptr<httpd::Server> server;
  log::Logger log{"pairing"};
  FormTokens tokens;
  std::string fingerprint;  // display form
  std::vector<std::string> addresses;
  bool paired = false;
  bool needs_pairing = false;
  bool claim_in_flight = false;
  bool stopped = false;
  int bound_port = 0;

  void start();
  void refresh_box_facts();
  PageModel model() const {
    PageModel m;
    m.hostname = settings.hostname;
    m.addresses = addresses;
    if (hooks.named_links) m.named_links = hooks.named_links();
    m.fingerprint = fingerprint;
    m.lan_port = settings.lan_port;
    m.needs_pairing = needs_pairing;
    m.cloud = settings.allowed_cloud;
    m.form_token = tokens.issue();
    return m;
  }
  void handle(const Request& req, httpd::Reply reply);
  void pair(const Request& req, bool wants_json, httpd::Reply reply);
};

void PairingServer::Impl::start() {
  server = std::make_unique<httpd::Server>(
      io, server_settings(settings), [weak = weak_from_this()](Request r, httpd::Reply reply) {
        if (auto self = weak.lock()) self->handle(r, std::move(reply));
      });
  server->start();
  bound_port = server->port();
  if (bound_port == 0) return;  // it could not listen (logged)
  refresh_box_facts();
  if (paired) {
    log.info("Pairing is closed (the box is paired); the port answers 410 Gone.",
             {{"port", bound_port}});
  } else {
    log.info("Pairing form ready.", {{"port", bound_port}});
  }
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
          self->fingerprint = fingerprint_for_display(facts.first.value());
        } else {
          self->log.error("The LAN certificate could not be made.",
                          {{"reason", facts.first.error().message}});
        }
        self->addresses = std::move(facts.second);
        if (!self->paired && !self->addresses.empty()) {
          std::string urls;
          for (const auto& a : self->addresses) {
            urls += (urls.empty() ? "" : " ") + std::string("http://") +
                    (a.find(':') != std::string::npos ? "[" + a + "]" : a) + ":" +
                    std::to_string(self->bound_port) + "/";
          }
          self->log.info("Pair this box at " + urls);
        }
      });
}

void PairingServer::Impl::handle(const Request& req, httpd::Reply reply) {
  const std::string& path = req.path;
  const std::string type = req.header("content-type");
  const bool wants_json = type.rfind("application/json", 0) == 0 ||
                          req.header("accept").find("application/json") != std::string::npos;
  auto page = [](int status, std::string html) {
    return answer(status, "text/html; charset=utf-8", std::move(html));
  };
  auto json_reply = [](int status, const json& body) {
    return answer(status, "application/json", body.dump() + "\n");
  };
  if (req.headers.count("host") && !host_is_the_box(req.header("host"), settings.hostname)) {
    log.warn(
        "A request for another host name was refused (the box answers only to its own addresses "
        "and name).");
    auto res = answer(421, "text/plain; charset=utf-8",
                      "This box answers only to its own address or name (" + settings.hostname +
                          ".local). Open it by its address.\n");
    res.close = true;
    return reply(std::move(res));
  }
  if (path != "/" && path != "/pair") {
    return reply(json_reply(404, {{"error", "not_found"}, {"hint", "The pairing form is at /"}}));
  }
  if (req.method == "POST") {
    // A browser names the page a post comes from: only the form's own page
    // may pair the box (a page elsewhere that a guard's phone opens may not).
    const std::string origin = lowercase(req.header("origin"));
    const std::string fetch_site = lowercase(req.header("sec-fetch-site"));
    const bool cross_site =
        req.headers.count("origin")
            ? origin != "http://" + lowercase(req.header("host"))
            : !fetch_site.empty() && fetch_site != "same-origin" && fetch_site != "none";
    if (cross_site) {
      log.warn("A cross-site post to the pairing form was refused.",
               {{"origin", origin.substr(0, 200)}});
      return reply(json_reply(
          403, {{"error", "cross_site"},
                {"message", "Pairing is done from this box's own form, not from another site."}}));
    }
  }
  if (paired) {
    auto m = model();
    if (wants_json) {
      return reply(json_reply(410, {{"error", "paired"}, {"lanUrls", lan_links(m)}}));
    }
    return reply(page(410, render_gone(m)));
  }
  if (path == "/" && (req.method == "GET" || req.method == "HEAD")) {
    return reply(page(200, render_form(model())));
  }
  if (path == "/pair" && req.method == "POST") return pair(req, wants_json, std::move(reply));
  auto res =
      answer(405, "text/plain; charset=utf-8", "Use GET / for the form and POST /pair to pair.\n");
  res.headers.emplace_back("Allow", path == "/" ? "GET, HEAD" : "POST");
  reply(std::move(res));
}

void PairingServer::Impl::pair(const Request& req, bool wants_json, httpd::Reply reply) {
  const std::string type = req.header("content-type");
  auto respond = [this, wants_json, reply](int status, PageModel m, const std::string& error) {
    Response res;
    res.status = status;
    if (wants_json) {
      json body{{"error", error}};
      if (!m.banner.empty()) body["message"] = m.banner;
      if (!m.errors.empty()) {
        body["fields"] = json::array();
        for (const auto& e : m.errors)
          body["fields"].push_back({{"field", e.field}, {"message", e.message}});
      }
      res.body = body.dump() + "\n";
    } else {
      res.content_type = "text/html; charset=utf-8";
      res.body = render_form(m);
    }
    reply(std::move(res));
  };

  PageModel m = model();
  std::string text;
  if (type.rfind("application/json", 0) == 0) {
    text = req.body;
  } else if (type.rfind("application/x-www-form-urlencoded", 0) == 0) {
    text = form_field(req.body, "qr").value_or("");
    if (!tokens.valid(form_field(req.body, "form").value_or(""))) {
      m.text = text;
      m.banner =
          "This form was opened too long ago (or before the box restarted). Press the button "
          "again: the "
          "pasted text is still here.";
      log.info("A form post without a valid form token was refused.");
      return respond(403, m, "form_expired");
    }
  } else {
    m.banner = "Send the QR code's content from the form (or as application/json).";
    return respond(415, m, "unsupported_media_type");
  }
  m.text = text;
  auto parsed = parse_qr(text);
  if (auto* errors = std::get_if<std::vector<FieldError>>(&parsed)) {
    m.errors = *errors;
    log.info("A pasted QR code was refused.", {{"fields", [&] {
                                                  std::string f;
                                                  for (const auto& e : *errors)
                                                    f += (f.empty() ? "" : ",") + e.field;
                                                  return f;
                                                }()}});
    return respond(400, m, "invalid_qr");
  }
  if (auto foreign = check_allowed_cloud(std::get<QrCode>(parsed), settings.allowed_cloud);
      !foreign.empty()) {
    m.errors = foreign;
    log.warn("A QR code for another cloud was refused; no claim was made.",
             {{"cloud", std::get<QrCode>(parsed).cloud_base_url.substr(0, 200)},
              {"allowed_cloud", settings.allowed_cloud}});
    return respond(400, m, "foreign_cloud");
  }
  if (claim_in_flight) {
    m.banner = "A pairing is already in progress. Wait a few seconds, then reload this page.";
    return respond(429, m, "busy");
  }
  claim_in_flight = true;
  QrCode qr = std::get<QrCode>(std::move(parsed));
  log::add_transient_secret(qr.bootstrap_token);
  log.info("Claiming the box from the cloud.",
           {{"device_id", qr.device_id}, {"cloud", qr.cloud_base_url}});
  ClaimRequest cr{qr, settings.hostname, settings.version,
                  "", settings.ca_file,  settings.claim_timeout};
  struct Done {
    ClaimOutcome outcome;
    Result<void> saved = ok();
  };
  workers.run(
      [cr, hooks = hooks]() mutable {
        Done d;
        auto fp =
            hooks.lan_fingerprint ? hooks.lan_fingerprint() : Result<std::string>(std::string());
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
      [self = shared_from_this(), m, qr, respond, reply, wants_json](Done d) mutable {
        self->claim_in_flight = false;
        if (self->stopped) return;
        using Kind = ClaimOutcome::Kind;
        if (d.outcome.kind == Kind::paired && d.saved) {
          self->paired = true;
          self->needs_pairing = false;
          self->log.info("Paired with the cloud.", {{"device_id", qr.device_id}});
          auto pm = self->model();
          reply(wants_json
                    ? answer(200, "application/json",
                             json{{"status", "paired"},
                                  {"deviceId", qr.device_id},
                                  {"lanUrls", lan_links(pm)}}
                                     .dump() +
                                 "\n")
                    : answer(200, "text/html; charset=utf-8", render_paired(pm, qr.device_id)));
          if (self->hooks.on_paired) self->hooks.on_paired();
          return;
        }
        if (d.outcome.kind == Kind::paired) {
          self->log.error("Paired, but the box could not save its settings; nothing was kept.",
                          {{"reason", d.saved.error().message}});
          m.banner = "The cloud accepted the box, but it could not save its settings (" +
                     d.saved.error().message +
                     "). Nothing was kept; ask for a new QR code once this is fixed.";
          return respond(500, m, "not_saved");
        }
        self->log.warn("The claim did not succeed.",
                       {{"device_id", qr.device_id}, {"reason", d.outcome.message}});
        m.banner = d.outcome.message;
        switch (d.outcome.kind) {
          case Kind::token_rejected:
            return respond(403, m, "token_rejected");
          case Kind::refused:
            return respond(400, m, "refused");
          default:
            return respond(502, m, "cloud_unreachable");
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
  if (!impl_->server) return asio::post(impl_->io, std::move(on_stopped));
  impl_->server->stop(std::move(on_stopped));
}

void PairingServer::reopen() {
  if (!impl_->paired) {
    impl_->needs_pairing = true;
    return;
  }
  impl_->paired = false;
  impl_->needs_pairing = true;
  impl_->log.warn("The pairing form is open again (the box needs pairing).",
                  {{"port", impl_->bound_port}});
}

bool PairingServer::paired() const { return impl_->paired; }
void PairingServer::set_lan_port(int port) {
  if (port > 0) impl_->settings.lan_port = port;
}
int PairingServer::port() const { return impl_->bound_port; }

}  // namespace secbox::pairing
