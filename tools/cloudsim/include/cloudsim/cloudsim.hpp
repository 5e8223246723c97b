#pragma once
// secbox-cloudsim: the cloud side of cloud-protocol.md as a real HTTPS + WSS
// server on loopback, with its own CA. The tests drive it in-process; the
// README's run command uses it as the embedded default cloud.
//
// It runs on a thread of its own; every public method may be called from any
// thread (they post to that thread and wait, bounded).
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace secbox::cloudsim {

enum class CertMode {
  trusted,     // signed by the CA in ca_file(), for 127.0.0.1, ::1 and localhost
  untrusted,   // signed by another CA that nobody trusts
  wrong_host,  // signed by the trusted CA, but for other.example only
};

struct Options {
  std::string dir;         // where ca.pem is written
  std::uint16_t port = 0;  // 0: any free port (kept across restart())
  CertMode cert = CertMode::trusted;
  std::chrono::seconds token_lifetime{24 * 3600};
  // cloud-protocol §7.7: a zone ("box.secbox.test") under which each box is
  // given a name in welcome.lan, its CSR answered with a chain from a real
  // ACME server (Debian's pebble; tools/cloudsim/src/acme.hpp). Empty, or
  // pebble not installed: no names are given (boxes stay self-signed).
  std::string lan_zone = {};
};

struct Received {
  nlohmann::json message;  // text frames, parsed (or {"unparsed": text})
  std::string binary;      // binary frames
  bool is_binary = false;
  int session = 0;  // which connection, counted from 1
};

class CloudSim {
 public:
  explicit CloudSim(Options options);
  ~CloudSim();
  CloudSim(const CloudSim&) = delete;
  CloudSim& operator=(const CloudSim&) = delete;

  // Listens (again) on the same port. stop() closes the listener and drops
  // every connection abruptly, as a crashed cloud would.
  void start();
  void stop();
  void restart() {
    stop();
    start();
  }

  std::uint16_t port() const;
  std::string base_url() const;     // https://127.0.0.1:<port>
  std::string gateway_url() const;  // wss://127.0.0.1:<port>/ws/device
  std::string ca_file() const;

  // Tokens: JWS-shaped, {"sub","iat","exp"}; the sim accepts what it issued.
  std::string issue_token(const std::string& device_id, std::chrono::seconds lifetime);
  std::string issue_token(const std::string& device_id) {
    return issue_token(device_id, options_.token_lifetime);
  }
  void revoke(const std::string& token);
  void add_bootstrap(const std::string& device_id, const std::string& bootstrap_token);

  // Behaviour switches.
  void set_refresh_status(int status);  // 0: normal; else answer refresh-jwt with it
  void set_claim_status(int status);    // 0: normal
  // Holds each claim this long before answering (tests of a claim in flight;
  // the simulator's thread waits meanwhile).
  void set_claim_delay(std::chrono::milliseconds delay);
  nlohmann::json last_claim() const;  // the body of the last claim request
  // false: stop reading after the device's next frame (a read already pending
  // still answers pings), so later pings go unanswered.
  void set_answer_pings(bool answer);
  void set_auto_welcome(bool on);     // answer hello with welcome (default on)
  void set_auto_ack_events(bool on);  // answer events.batch with events.ack (default on)
  // Text frames sent, in order, right after every welcome (a demo's script).
  void set_after_welcome(std::vector<std::string> messages);

  // Software updates (cloud-protocol §7.6). The simulator's signing key (an
  // Ed25519 key made once and kept in dir) stands for the cloud's release
  // key: update_public_key_file() is what install.sh pins on the box, and
  // update_private_key_file() what secbox-release signs with.
  std::string update_public_key_file() const;
  std::string update_private_key_file() const;
  // §7.7: the root the LAN certificates chain to ("" without an ACME
  // server); the name a device is given; certificates installed so far.
  std::string lan_roots_file() const;
  std::string lan_name(const std::string& device_id) const;
  int lan_certificates_sent() const;
  // The base64 Ed25519 signature of a file's bytes by that key.
  std::string sign_file(const std::string& path) const;
  // Serves `path` at <base_url>/files/<name> (GET, with Range), read anew at
  // every request; returns the URL.
  std::string publish(const std::string& name, const std::string& path);
  // An update.apply payload for a release folder (tools/release: secbox.tar.zst,
  // manifest.json, manifest.sig): the bundle published, the manifest and its
  // signature in base64, as the folder has them.
  nlohmann::json update_payload(const std::string& release_dir);
  // The one-line install: <base_url>/install.sh serves `script` with this
  // cloud's URL and update key filled in, and the release is served where
  // the script looks for it: /files/secbox-linux-<arch>.manifest.json, .sig
  // and .tar.zst.
  void serve_install(const std::string& script, const std::string& release_dir,
                     const std::string& arch = "amd64");
  // Redirects GET <base_url>/files/<name> to `location` (302): a test of
  // where install.sh follows.
  void redirect(const std::string& name, const std::string& location);
  // Every later download of published files stops after this many bytes, the
  // connection dropped (0: whole files). A cut download tests a resume.
  void set_download_cut(std::uint64_t bytes);
  // Holds each download this long before answering (a download in flight;
  // the simulator's thread waits meanwhile).
  void set_download_delay(std::chrono::milliseconds delay);
  int file_requests() const;  // GETs of /files/ answered so far

  // The connected device (the newest session).
  bool send_text(const std::string& text);
  bool send_binary(const std::string& bytes);
  bool close_device(std::uint16_t code, const std::string& reason = "");

  // What arrived, in order; waits are bounded. `match` runs under the
  // simulator's lock: it must not call back into the simulator.
  std::vector<Received> received() const;
  void clear_received();
  std::optional<Received> wait_for(const std::function<bool(const Received&)>& match,
                                   std::chrono::milliseconds limit);
  std::optional<Received> wait_for_type(const std::string& type, std::chrono::milliseconds limit);

  // Counters.
  int sessions_opened() const;    // WebSocket sessions accepted (any token)
  int sessions_rejected() const;  // closed with 4401
  int refresh_calls() const;
  std::size_t distinct_events() const;  // distinct clientIds received in events.batch
  long events_received() const;         // every event received, duplicates included
  long tls_records_received() const;    // encrypted TLS records read (handshakes excepted)
  std::string last_bearer() const;      // the Authorization token of the last upgrade
  std::string last_subprotocol() const;
  std::string last_device_header() const;

  struct Impl;  // public so that the .cpp's session classes can name it

 private:
  Options options_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace secbox::cloudsim
