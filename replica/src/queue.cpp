#include "replica/queue.hpp"

#include <pqxx/pqxx>

#include "common/time.hpp"
#include "session.hpp"
#include "tunnel/shapes.hpp"

namespace secbox::replica {

using json = nlohmann::json;

namespace {

// 8-4-4-4-12 hex digits.
bool is_uuid(const std::string& s) {
  if (s.size() != 36) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return false;
    } else if (!std::isxdigit(static_cast<unsigned char>(c))) {
      return false;
    }
  }
  return true;
}

// A PostgreSQL array literal of UUIDs (already checked to be UUIDs).
std::string uuid_array(const std::vector<std::string>& ids) {
  std::string out = "{";
  for (std::size_t i = 0; i < ids.size(); ++i) out += (i ? "," : "") + ids[i];
  return out + "}";
}

constexpr const char* kUtc = "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'";

std::string utc_text(const std::string& column) {
  return "to_char(" + column + " AT TIME ZONE 'UTC', " + kUtc + ")";
}

// The queue's figures, read in the caller's transaction.
QueueStats read_stats(pqxx::transaction_base& tx) {
  QueueStats s;
  auto r = tx.exec1("SELECT count(*), COALESCE(sum(size_bytes), 0) FROM outbound_event WHERE acked_at IS NULL");
  s.depth = r[0].as<std::int64_t>();
  s.bytes = r[1].as<std::int64_t>();
  auto oldest = tx.exec("SELECT " + utc_text("enqueued_at") +
                        " FROM outbound_event WHERE acked_at IS NULL ORDER BY seq LIMIT 1");
  if (!oldest.empty()) s.oldest_at = oldest[0][0].as<std::string>();
  return s;
}

}  // namespace

bool is_alarm(const std::string& type) { return type == "ban_hit"; }

struct OutboundQueue::Row {
  std::int64_t seq = 0;
  std::string client_id, type, occurred_at, data;
};

OutboundQueue::OutboundQueue(boost::asio::io_context& loop, Database& database, QueueLimits limits)
    : loop_(loop), database_(database), limits_(limits), retry_timer_(loop), purge_timer_(loop) {}

OutboundQueue::~OutboundQueue() = default;

void OutboundQueue::start() {
  stopped_ = false;
  database_.run<QueueStats>(
      [](Session& s) -> Result<QueueStats> {
        pqxx::read_transaction tx(s.conn());
        return read_stats(tx);
      },
      [this](Result<QueueStats> r) {
        if (stopped_) return;
        if (r) {
          stats_ = r.value();
          log_.info("The outbound queue is ready.", {{"depth", stats_.depth}, {"bytes", stats_.bytes}});
        }
        purge();
      });
}

void OutboundQueue::stop(std::function<void()> on_stopped) {
  stopped_ = true;
  welcomed_ = false;
  retry_timer_.cancel();
  purge_timer_.cancel();
  on_stopped();
}

void OutboundQueue::enqueue(OutboundEvent event, std::function<void(Result<Enqueued>)> done) {
  auto invalid = [&](const std::string& why) { done(Error{"invalid", why}); };
  if (!is_uuid(event.client_id)) return invalid("clientId must be a UUID");
  const auto* shape = tunnel::shapes::event_data(event.type);
  if (!shape) return invalid("type must be one of visitor_entry, ban_hit, frigate_event, guard_note, compose_result");
  if (!parse_rfc3339(event.occurred_at)) return invalid("occurredAt must be an RFC 3339 time");
  if (auto problem = tunnel::shapes::check(*shape, event.data)) return invalid("data." + problem->describe());
  const json wire{{"clientId", event.client_id}, {"type", event.type}, {"occurredAt", event.occurred_at},
                  {"data", event.data}};
  const auto size = static_cast<std::int64_t>(wire.dump().size());
  if (static_cast<std::size_t>(size) + 200 > limits_.batch_bytes) return invalid("the event is larger than a batch");
  const bool alarm = is_alarm(event.type);
  const std::int64_t max_rows = limits_.max_rows + (alarm ? limits_.alarm_reserve_rows : 0);
  const std::int64_t max_bytes = limits_.max_bytes + (alarm ? limits_.alarm_reserve_bytes : 0);
  if (stats_.depth >= max_rows || stats_.bytes + size > max_bytes) {
    log_.warn("Refused an event: the outbound queue is full.", {{"type", event.type}, {"depth", stats_.depth}});
    return done(Error{"queue_full", "the outbound queue is full (" + std::to_string(stats_.depth) +
                                        " events waiting for the cloud); nothing was written"});
  }
  database_.run<Enqueued>(
      [event = std::move(event), size](Session& s) -> Result<Enqueued> {
        pqxx::work tx(s.conn());
        tx.exec0("SET LOCAL synchronous_commit = on");  // durable before anyone is told so
        auto inserted = tx.exec_params(
            "INSERT INTO outbound_event (client_id, type, occurred_at, data, size_bytes) "
            "VALUES ($1::uuid, $2, $3::timestamptz, $4::jsonb, $5) ON CONFLICT (client_id) DO NOTHING RETURNING seq",
            event.client_id, event.type, event.occurred_at, event.data.dump(), size);
        Enqueued out;
        if (inserted.empty()) {
          out.duplicate = true;
          out.seq = tx.exec_params1("SELECT seq FROM outbound_event WHERE client_id = $1::uuid", event.client_id)[0]
                        .as<std::int64_t>();
        } else {
          out.seq = inserted[0][0].as<std::int64_t>();
        }
        tx.commit();
        return out;
      },
      [this, size, done = std::move(done)](Result<Enqueued> r) {
        if (r && !r.value().duplicate) {
          if (stats_.depth == 0) stats_.oldest_at = format_rfc3339_millis(std::chrono::system_clock::now());
          ++stats_.depth;
          stats_.bytes += size;
          pump();
        }
        done(std::move(r));
      });
}

void OutboundQueue::attach(Uplink uplink) {
  uplink_ = std::move(uplink);
  // A reply that came after its batch timed out still acknowledges events.
  uplink_.dispatcher->on_notice("events.ack", [this](const tunnel::Envelope& e) {
    std::vector<std::string> ids;
    for (const auto& id : e.payload.value("clientIds", json::array())) {
      if (id.is_string()) ids.push_back(id.get<std::string>());
    }
    acknowledged(ids);
  });
}

void OutboundQueue::on_welcomed() {
  ++session_;
  welcomed_ = true;
  loading_ = false;
  in_flight_.clear();
  last_sent_seq_ = 0;  // everything unacknowledged goes again, oldest first
  pump();
}

void OutboundQueue::on_disconnected() {
  ++session_;
  welcomed_ = false;
  loading_ = false;
  in_flight_.clear();
  retry_timer_.cancel();
}

void OutboundQueue::pump() {
  if (!welcomed_ || stopped_ || loading_ || !uplink_.dispatcher) return;
  if (in_flight_.size() >= limits_.batches_in_flight) return;
  if (uplink_.writable && !uplink_.writable()) {
    // The tunnel's send buffer is full: produce nothing until it drains.
    retry_timer_.expires_after(std::chrono::milliseconds(20));
    retry_timer_.async_wait([this](boost::system::error_code ec) {
      if (!ec) pump();
    });
    return;
  }
  loading_ = true;
  const auto session = session_;
  const auto after = last_sent_seq_;
  const auto limit = static_cast<long>(limits_.batch_events);
  database_.run<std::vector<Row>>(
      [after, limit](Session& s) -> Result<std::vector<Row>> {
        pqxx::read_transaction tx(s.conn());
        auto r = tx.exec_params("SELECT seq, client_id::text, type, " + utc_text("occurred_at") +
                                    ", data::text FROM outbound_event WHERE acked_at IS NULL AND seq > $1 "
                                    "ORDER BY seq LIMIT $2",
                                after, limit);
        std::vector<Row> rows;
        rows.reserve(r.size());
        for (const auto& row : r) {
          rows.push_back(Row{row[0].as<std::int64_t>(), row[1].as<std::string>(), row[2].as<std::string>(),
                             row[3].as<std::string>(), row[4].as<std::string>()});
        }
        return rows;
      },
      [this, session](Result<std::vector<Row>> r) {
        if (session != session_) return;  // a reconnect came in between
        loading_ = false;
        if (!r) {
          log_.warn("Could not read the outbound queue; retrying.", {{"reason", r.error().message}});
          retry_timer_.expires_after(std::chrono::seconds(1));
          retry_timer_.async_wait([this](boost::system::error_code ec) {
            if (!ec) pump();
          });
          return;
        }
        if (r.value().empty()) return;  // drained; the next enqueue pumps again
        send_batch(std::move(r).value());
      });
}

void OutboundQueue::send_batch(std::vector<Row> rows) {
  json events = json::array();
  std::vector<std::string> ids;
  std::size_t bytes = 200;  // the envelope around the events
  std::int64_t last_seq = last_sent_seq_;
  for (auto& row : rows) {
    json e{{"clientId", row.client_id}, {"type", row.type}, {"occurredAt", row.occurred_at},
           {"data", json::parse(row.data)}};
    const auto size = e.dump().size() + 1;
    if (!events.empty() && bytes + size > limits_.batch_bytes) break;  // the rest go next
    bytes += size;
    events.push_back(std::move(e));
    ids.push_back(row.client_id);
    last_seq = row.seq;
  }
  const auto session = session_;
  auto id = uplink_.dispatcher->request(
      "events.batch", {{"events", std::move(events)}}, limits_.ack_timeout,
      [this, session, ids](Result<tunnel::Envelope> r) {
        if (session != session_) return;
        if (r && r.value().type == "events.ack") {
          // The batch's id leaves the in-flight set; the ack names what the cloud has.
          in_flight_.erase(r.value().re.value_or(""));
          std::vector<std::string> acked;
          for (const auto& id : r.value().payload.value("clientIds", json::array())) {
            if (id.is_string()) acked.push_back(id.get<std::string>());
          }
          acknowledged(acked);
          return pump();
        }
        if (!r && r.error().code == "disconnected") return;
        const std::string why = r ? "events.batch answered with " + r.value().type
                                  : r.error().code == "timeout" ? "events.batch unacknowledged for 60 s"
                                                                : "events.batch refused: " + r.error().code;
        log_.warn("A batch was not acknowledged; reconnecting to send it again.", {{"reason", why}});
        if (uplink_.reconnect) uplink_.reconnect(why);
      });
  if (!id) return;  // the tunnel is down; the next welcome starts over
  last_sent_seq_ = last_seq;
  in_flight_[*id] = ids;
  ++batches_sent_;
  events_sent_ += static_cast<std::int64_t>(ids.size());
  pump();  // up to the in-flight bound
}

void OutboundQueue::acknowledged(const std::vector<std::string>& client_ids) {
  std::vector<std::string> ids;
  for (const auto& id : client_ids) {
    if (is_uuid(id)) ids.push_back(id);
  }
  if (ids.empty()) return;
  database_.run<QueueStats>(
      [ids](Session& s) -> Result<QueueStats> {
        pqxx::work tx(s.conn());
        tx.exec_params0("UPDATE outbound_event SET acked_at = now() WHERE client_id = ANY($1::uuid[]) "
                        "AND acked_at IS NULL",
                        uuid_array(ids));
        auto stats = read_stats(tx);
        tx.commit();
        return stats;
      },
      [this](Result<QueueStats> r) {
        if (!r) {
          // Not marked: the events are sent again later, which the cloud
          // deduplicates. Nothing is lost.
          log_.warn("Could not mark acknowledged events.", {{"reason", r.error().message}});
          return;
        }
        stats_ = r.value();
      });
}

void OutboundQueue::purge() {
  if (stopped_) return;
  const auto keep_s = std::chrono::duration_cast<std::chrono::seconds>(limits_.keep_acked).count();
  database_.run<std::int64_t>(
      [keep_s](Session& s) -> Result<std::int64_t> {
        pqxx::work tx(s.conn());
        auto r = tx.exec_params("DELETE FROM outbound_event WHERE acked_at < now() - make_interval(secs => $1)",
                                static_cast<double>(keep_s));
        tx.commit();
        return static_cast<std::int64_t>(r.affected_rows());
      },
      [this](Result<std::int64_t> r) {
        if (r && r.value() > 0) log_.info("Deleted acknowledged events past their 7 days.", {{"rows", r.value()}});
        if (stopped_) return;
        purge_timer_.expires_after(limits_.purge_every);
        purge_timer_.async_wait([this](boost::system::error_code ec) {
          if (!ec) purge();
        });
      });
}

}  // namespace secbox::replica
