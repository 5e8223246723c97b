#pragma once
// The durable outbound queue (cloud-protocol §6): enqueue() answers only once
// the event is committed (synchronous commit), so its originator knows it is
// durable; a drainer sends unacknowledged events oldest first in
// `events.batch` messages after every welcome (≤ 500 events, ≤ 1 MiB, ≤ 4
// batches in flight), marks what `events.ack` names, resends what was in
// flight when a connection dropped, and deletes acknowledged events after 7
// days. Limits and their reasons: docs/queue.md.
//
// Loop thread only; database work runs on the Database's thread. Owned by
// the appliance, after the database.
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <unordered_map>
#include <string>
#include <vector>

#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>

#include "common/component.hpp"
#include "common/lifetime.hpp"
#include "common/log.hpp"
#include "protocol/router.hpp"
#include "replica/database.hpp"
#include "replica/ports.hpp"

namespace secbox::replica {

struct QueueLimits {
  std::int64_t max_rows = 100000;       // unacknowledged events
  std::int64_t max_bytes = 64ll << 20;  // their serialized size
  // Alarms go beyond those limits by this much more at most: a full queue
  // still takes them, but nothing grows without bound.
  std::int64_t alarm_reserve_rows = 10000;
  std::int64_t alarm_reserve_bytes = 8ll << 20;
  std::size_t batch_events = 500;
  std::size_t batch_bytes = 1u << 20;  // the whole events.batch message
  std::size_t batches_in_flight = 4;
  std::chrono::milliseconds ack_timeout{60000};
  std::chrono::hours keep_acked{24 * 7};
  std::chrono::milliseconds purge_every{std::chrono::hours(1)};
};

struct QueueStats {
  std::int64_t depth = 0;  // unacknowledged events
  std::int64_t bytes = 0;
  std::optional<std::string> oldest_at;  // enqueue time of the oldest, RFC 3339
};

// Event types accepted when the queue is full, up to the alarm reserve.
bool is_alarm(const std::string& type);

class OutboundQueue final : public Component, public EventSink {
 public:
  // The way up is the router: batches go out in its sessions when it is
  // writable, and a batch never acknowledged starts the connection over.
  OutboundQueue(boost::asio::io_context& loop, Database& database, protocol::Router& router,
                QueueLimits limits = {});
  ~OutboundQueue() override;

  std::string_view name() const override { return "queue"; }
  void start() override;  // reads the figures, then purges on its schedule
  void stop(std::function<void()> on_stopped) override;

  // Errors: Errc::invalid (the event is malformed; the message says which
  // field), Errc::queue_full, or the database's (Errc::unavailable,
  // Errc::database): then nothing
  // was written and the caller must not report success.
  void enqueue(OutboundEvent event, std::function<void(Result<Enqueued>)> done) override;

  const QueueStats& stats() const { return stats_; }
  // Figures for tests and benchmarks.
  std::int64_t batches_sent() const { return batches_sent_; }
  std::int64_t events_sent() const { return events_sent_; }
  std::int64_t commits() const { return commits_; }  // enqueue transactions

 private:
  struct Row;
  struct Waiting {
    OutboundEvent event;
    std::int64_t size = 0;
    std::function<void(Result<Enqueued>)> done;
  };
  void commit_waiting();
  void commit_group(std::shared_ptr<std::vector<Waiting>> group, std::function<void()> then);
  struct Written;
  static Result<std::vector<Written>> insert_group(Session& session, const std::string& rows);
  void answer_group(std::vector<Waiting>& group, const Result<std::vector<Written>>& r);
  void pump();
  void send_batch(std::vector<Row> rows);
  void acknowledged(const std::vector<std::string>& client_ids);
  void purge();
  void on_welcomed();      // drain from the oldest unacknowledged event
  void on_disconnected();  // what was in flight is sent again after the next welcome

  boost::asio::io_context& loop_;
  Database& database_;
  QueueLimits limits_;
  protocol::Router& router_;
  QueueStats stats_;
  std::int64_t oldest_seq_ = 0;  // seq of the oldest unacknowledged event; 0: none known
  std::deque<Waiting> waiting_;  // enqueued, not yet in a commit
  bool committing_ = false;
  std::int64_t unanswered_rows_ = 0;  // waiting or being committed
  std::int64_t unanswered_bytes_ = 0;
  boost::asio::steady_timer retry_timer_;
  boost::asio::steady_timer purge_timer_;
  log::Logger log_{"queue"};
  LoopAffinity affinity_;
  bool welcomed_ = false;
  bool loading_ = false;
  bool stopped_ = false;
  std::uint64_t session_ = 0;       // bumped on every welcome and disconnect
  std::int64_t last_sent_seq_ = 0;  // this session's high-water mark
  std::map<std::string, std::vector<std::string>> in_flight_;  // batch id → clientIds
  std::unordered_map<std::string, std::int64_t>
      sent_seq_;  // clientId → seq, sent and not yet acknowledged
  std::int64_t batches_sent_ = 0;
  std::int64_t events_sent_ = 0;
  std::int64_t commits_ = 0;
  // Completions (database, the router's replies) check it: the queue may be
  // destroyed while they are still queued on the loop.
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

}  // namespace secbox::replica
