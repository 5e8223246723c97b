#include "page.hpp"

namespace secbox::pairing {
namespace {

const char* const kStyle = R"(<style>
:root{color-scheme:light dark;--fg:#1b1f24;--muted:#57606a;--bg:#f6f8fa;--card:#fff;--line:#d0d7de;--bad:#b42318;--ok:#1a7f37;--accent:#0b5cad}
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--muted:#9da7b3;--bg:#0d1117;--card:#161b22;--line:#30363d;--bad:#ff7b72;--ok:#3fb950;--accent:#58a6ff}}
*{box-sizing:border-box}body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:var(--bg);color:var(--fg)}
main{max-width:40rem;margin:0 auto;padding:1.25rem}h1{font-size:1.4rem;margin:.2rem 0 1rem}
.card{background:var(--card);border:1px solid var(--line);border-radius:.6rem;padding:1rem 1.1rem;margin:0 0 1rem}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.3rem .9rem;margin:0}dt{color:var(--muted)}dd{margin:0;overflow-wrap:anywhere}
code{font:.85rem/1.4 ui-monospace,monospace;overflow-wrap:anywhere}
label{display:block;font-weight:600;margin-bottom:.4rem}
textarea{width:100%;min-height:9rem;font:.9rem/1.4 ui-monospace,monospace;padding:.6rem;border:1px solid var(--line);border-radius:.4rem;background:var(--bg);color:var(--fg)}
textarea[aria-invalid=true]{border-color:var(--bad)}
button{margin-top:.8rem;width:100%;padding:.8rem;font-size:1rem;font-weight:600;border:0;border-radius:.4rem;background:var(--accent);color:#fff}
.hint{color:var(--muted);font-size:.9rem;margin:.4rem 0 0}.bad{color:var(--bad)}.ok{color:var(--ok)}
ul.errors{margin:.6rem 0 0;padding-left:1.2rem;color:var(--bad)}.banner{border-color:var(--bad)}
a{color:var(--accent)}
</style>)";

std::string head(const std::string& title) {
  return "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
         "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
         "<title>" +
         html_escape(title) + "</title>" + kStyle + "</head><body><main>";
}

const char* const kFoot = "</main></body></html>";

std::string box_card(const PageModel& m) {
  std::string s =
      "<section class=\"card\"><dl><dt>Box</dt><dd>" + html_escape(m.hostname) + "</dd>";
  s += "<dt>Addresses</dt><dd>";
  if (m.addresses.empty()) s += "none found (is the network cable in?)";
  for (std::size_t i = 0; i < m.addresses.size(); ++i) {
    s += (i ? ", " : "") + std::string("<code>") + html_escape(m.addresses[i]) + "</code>";
  }
  s += "</dd><dt>Cloud</dt><dd>";
  s += m.cloud.empty() ? std::string("<span class=\"bad\">none: installed without one</span>")
                       : "<code id=\"cloud\">" + html_escape(m.cloud) + "</code>";
  s += "</dd><dt>LAN certificate</dt><dd>";
  s += m.fingerprint.empty()
           ? std::string("being made…")
           : "SHA-256 <code id=\"fingerprint\">" + html_escape(m.fingerprint) + "</code>";
  s += "</dd></dl><p class=\"hint\">When the guard app first opens, the browser warns about this "
       "box's own "
       "certificate: it is safe to go on if the fingerprint it shows is the one "
       "above.</p></section>";
  return s;
}

}  // namespace

std::string html_escape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::vector<std::string> lan_links(const PageModel& m) {
  std::vector<std::string> links = m.named_links;
  const std::string port = m.lan_port == 443 ? "" : ":" + std::to_string(m.lan_port);
  for (const auto& a : m.addresses) {
    links.push_back("https://" + (a.find(':') != std::string::npos ? "[" + a + "]" : a) + port +
                    "/");
  }
  if (links.size() == m.named_links.size()) links.push_back("https://" + m.hostname + port + "/");
  return links;
}

std::string render_form(const PageModel& m) {
  std::string s = head("Pair this SecBox");
  s += "<h1>Pair this SecBox</h1>";
  if (m.needs_pairing) {
    s += "<section class=\"card banner\"><p class=\"bad\"><strong>This box must be paired "
         "again.</strong> The cloud "
         "no longer accepts its device token. The guards' app keeps working on the booth's network "
         "meanwhile.</p>"
         "</section>";
  } else {
    s += "<p>This is a SecBox security appliance for a guard booth. It is not connected to a cloud "
         "account yet. "
         "Open the community in the cloud console, show the box's pairing QR code, scan it, and "
         "paste what it "
         "contains below.</p>";
  }
  s += box_card(m);
  if (!m.banner.empty()) {
    s += "<section class=\"card banner\" role=\"alert\"><p class=\"bad\" id=\"banner\">" +
         html_escape(m.banner) + "</p></section>";
  }
  if (m.cloud.empty()) {
    s += "<section class=\"card banner\"><p class=\"bad\"><strong>This box pairs with no "
         "cloud.</strong> It was "
         "installed without the cloud it belongs to. Run the installer again with <code>--cloud "
         "URL</code> (the "
         "address of your cloud console), then reload this page.</p></section>";
  }
  s += "<form class=\"card\" method=\"post\" action=\"/pair\">";
  s += "<input type=\"hidden\" name=\"form\" value=\"" + html_escape(m.form_token) + "\">";
  s += "<label for=\"qr\">QR code content</label>";
  s += "<textarea id=\"qr\" name=\"qr\" required spellcheck=\"false\" autocapitalize=\"off\" "
       "autocomplete=\"off\" "
       "placeholder='{\"v\":1,\"cloudBaseUrl\":\"https://…\",\"deviceId\":\"…\",…}'";
  if (!m.errors.empty()) s += " aria-invalid=\"true\" aria-describedby=\"qr-errors\"";
  s += ">" + html_escape(m.text) + "</textarea>";
  if (!m.errors.empty()) {
    s += "<ul class=\"errors\" id=\"qr-errors\">";
    for (const auto& e : m.errors) {
      s += "<li data-field=\"" + html_escape(e.field) + "\">" + html_escape(e.message) + "</li>";
    }
    s += "</ul>";
  }
  s += "<button type=\"submit\">Pair this box</button></form>";
  return s + kFoot;
}

std::string render_paired(const PageModel& m, const std::string& device_id) {
  std::string s = head("SecBox paired");
  s += "<h1 class=\"ok\">Paired</h1><section class=\"card\"><p>This box is now <strong>" +
       html_escape(device_id) +
       "</strong> and is connecting to the cloud.</p><p>The guards' app:</p><ul>";
  for (const auto& l : lan_links(m))
    s += "<li><a href=\"" + html_escape(l) + "\">" + html_escape(l) + "</a></li>";
  s += "</ul></section>" + box_card(m);
  return s + kFoot;
}

std::string render_gone(const PageModel& m) {
  std::string s = head("SecBox is paired");
  s += "<h1>This box is paired</h1><section class=\"card\"><p>Pairing is closed. The guards' app "
       "is at:</p><ul>";
  for (const auto& l : lan_links(m))
    s += "<li><a href=\"" + html_escape(l) + "\">" + html_escape(l) + "</a></li>";
  s += "</ul></section>";
  return s + kFoot;
}

}  // namespace secbox::pairing
