#include "replica/queue.hpp"

#include <boost/asio/post.hpp>

#include <pqxx/pqxx>

#include <algorithm>
#include <iterator>

#include "common/time.hpp"
#include "session.hpp"
#include "protocol/shapes.hpp"

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

// jsonb cannot hold U+0000 in a string (nor a key).
bool holds_nul(const json& j) {
  if (j.is_string()) return j.get_ref<const std::string&>().find('\0') != std::string::npos;
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (it.key().find('\0') != std::string::npos || holds_nul(it.value())) return true;
    }
  }
  if (j.is_array()) {
    for (const auto& v : j) {
      if (holds_nul(v)) return true;
    }
  }
  return false;
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

// The queue's figures, counted once at start; afterwards they are kept
// incrementally (enqueue adds, acknowledgement subtracts what it marked).
struct Counted {
  QueueStats stats;
  std::int64_t oldest_seq = 0;
};
Counted count_queue(pqxx::transaction_base& tx) {
  Counted c;
  auto r = tx.exec1(
      "SELECT count(*), COALESCE(sum(size_bytes), 0) FROM outbound_event WHERE acked_at IS NULL");
  c.stats.depth = r[0].as<std::int64_t>();
  c.stats.bytes = r[1].as<std::int64_t>();
  auto oldest = tx.exec("SELECT seq, " + utc_text("enqueued_at") +
                        " FROM outbound_event WHERE acked_at IS NULL ORDER BY seq LIMIT 1");
  if (!oldest.empty()) {
    c.oldest_seq = oldest[0][0].as<std::int64_t>();
    c.stats.oldest_at = oldest[0][1].as<std::string>();
  }
  return c;
}

// What one acknowledgement marked, and the oldest event left after it.
struct Marked {
  std::int64_t rows = 0, bytes = 0;
  std::int64_t oldest_seq = 0;
  std::optional<std::string> oldest_at;
};

}  // namespace

bool is_alarm(const std::string& type) { return type == "ban_hit"; }

// One group commit's answer for each distinct clientId, in input order.
struct OutboundQueue::Written {
  std::string client_id;
  Enqueued result;
  std::optional<std::string> enqueued_at;  // when new
};

// One event as it goes in events.batch: its JSON text, as PostgreSQL writes it.
struct OutboundQueue::Row {
  std::int64_t seq = 0;
  std::string client_id, json;
};

OutboundQueue::OutboundQueue(boost::asio::io_context& loop, Database& database,
                             protocol::Router& router, QueueLimits limits)
    : loop_(loop), database_(database), limits_(limits), router_(router), retry_timer_(loop),
      purge_timer_(loop) {
  std::weak_ptr<int> alive = alive_;
  // A reply that came after its batch timed out still acknowledges events.
  router_.on_notice("events.ack", [this, alive](const protocol::Envelope& e) {
    if (alive.expired()) return;
    std::vector<std::string> ids;
    for (const auto& id : e.payload.value("clientIds", json::array())) {
      if (id.is_string()) ids.push_back(id.get<std::string>());
    }
    acknowledged(ids);
  });
  router_.on_session({[this, alive](const json&) {
                        if (!alive.expired()) on_welcomed();
                      },
                      [this, alive] {
                        if (!alive.expired()) on_disconnected();
                      }});
}

// Callers still waiting for a commit hear that none will come, from the loop
// (not from inside the destructor, where they could call back into it).
OutboundQueue::~OutboundQueue() {
  for (auto& w : waiting_) {
    boost::asio::post(loop_, [done = std::move(w.done)] {
      done(Error{Errc::unavailable, "the queue stopped"});
    });
  }
}

void OutboundQueue::start() {
  stopped_ = false;
  database_.run<Counted>(
      [](Session& s) -> Result<Counted> {
        pqxx::read_transaction tx(s.conn());
        return count_queue(tx);
      },
      [this, alive = std::weak_ptr<int>(alive_)](Result<Counted> r) {
        if (alive.expired() || stopped_) return;
        if (r) {
          // Events committed meanwhile were counted by the recount or are
          // still to be answered; either way the figures add up.
          stats_.depth += r.value().stats.depth;
          stats_.bytes += r.value().stats.bytes;
          if (r.value().stats.oldest_at) {
            stats_.oldest_at = r.value().stats.oldest_at;
            oldest_seq_ = r.value().oldest_seq;
          }
          log_.info("The outbound queue is ready.",
                    {{"depth", stats_.depth}, {"bytes", stats_.bytes}});
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
  affinity_.assert_on_loop("OutboundQueue::enqueue");
  auto invalid = [&](const std::string& why) { done(Error{Errc::invalid, why}); };
  if (!is_uuid(event.client_id)) return invalid("clientId must be a UUID");
  const auto* shape = protocol::shapes::event_data(event.type);
  if (!shape)
    return invalid(
        "type must be one of visitor_entry, ban_hit, frigate_event, guard_note, compose_result, "
        "update_result");
  if (!parse_rfc3339(event.occurred_at)) return invalid("occurredAt must be an RFC 3339 time");
  if (auto problem = protocol::shapes::check(*shape, event.data))
    return invalid("data." + problem->describe());
  if (holds_nul(event.data)) return invalid("data must not contain U+0000");
  const json wire{{"clientId", event.client_id},
                  {"type", event.type},
                  {"occurredAt", event.occurred_at},
                  {"data", event.data}};
  const auto size = static_cast<std::int64_t>(wire.dump().size());
  if (static_cast<std::size_t>(size) + 200 > limits_.batch_bytes)
    return invalid("the event is larger than a batch");
  const bool alarm = is_alarm(event.type);
  const std::int64_t max_rows = limits_.max_rows + (alarm ? limits_.alarm_reserve_rows : 0);
  const std::int64_t max_bytes = limits_.max_bytes + (alarm ? limits_.alarm_reserve_bytes : 0);
  // Events not yet committed count too: the limits hold however many callers
  // are waiting at once.
  const std::int64_t depth = stats_.depth + unanswered_rows_;
  if (depth >= max_rows || stats_.bytes + unanswered_bytes_ + size > max_bytes) {
    log_.warn("Refused an event: the outbound queue is full.",
              {{"type", event.type}, {"depth", depth}});
    return done(Error{Errc::queue_full, "the outbound queue is full (" + std::to_string(depth) +
                                            " events waiting for the cloud); nothing was written"});
  }
  ++unanswered_rows_;
  unanswered_bytes_ += size;
  waiting_.push_back(Waiting{std::move(event), size, std::move(done)});
  if (!committing_) commit_waiting();
}

Result<std::vector<OutboundQueue::Written>> OutboundQueue::insert_group(Session& session,
                                                                        const std::string& rows) {
  pqxx::work tx(session.conn());
  tx.exec0("SET LOCAL synchronous_commit = on");  // durable before anyone is told so
  // One statement for the whole group: rows new to the queue get their seq in
  // the callers' order; a clientId already queued keeps its own.
  auto r = tx.exec_params(
      "WITH input AS (SELECT * FROM jsonb_to_recordset($1::jsonb) "
      "                 AS x(n integer, c uuid, t text, o timestamptz, d jsonb, s integer)), "
      "ins AS (INSERT INTO outbound_event (client_id, type, occurred_at, data, size_bytes) "
      "        SELECT c, t, o, d, s FROM input ORDER BY n "
      "        ON CONFLICT (client_id) DO NOTHING RETURNING client_id, seq, enqueued_at) "
      "SELECT i.c::text, ins.seq IS NOT NULL, "
      "COALESCE(ins.seq, (SELECT e.seq FROM outbound_event e WHERE e.client_id = i.c)), " +
          utc_text("ins.enqueued_at") +
          " FROM input i LEFT JOIN ins ON ins.client_id = i.c ORDER BY i.n",
      rows);
  tx.commit();
  std::vector<Written> out;
  out.reserve(r.size());
  for (const auto& row : r) {
    Written w;
    w.client_id = row[0].as<std::string>();
    w.result.duplicate = !row[1].as<bool>();
    w.result.seq = row[2].as<std::int64_t>();
    if (!row[3].is_null()) w.enqueued_at = row[3].as<std::string>();
    out.push_back(std::move(w));
  }
  return out;
}

// Group commit: every event that arrived while the previous commit was in
// flight goes into the next one (at most kGroup), one INSERT and one
// synchronous COMMIT for all of them; each caller is answered after it.
void OutboundQueue::commit_waiting() {
  constexpr std::size_t kGroup = 1000;
  if (waiting_.empty()) return;
  auto group = std::make_shared<std::vector<Waiting>>();
  const std::size_t n = std::min(kGroup, waiting_.size());
  group->reserve(n);
  std::move(waiting_.begin(), waiting_.begin() + static_cast<std::ptrdiff_t>(n),
            std::back_inserter(*group));
  waiting_.erase(waiting_.begin(), waiting_.begin() + static_cast<std::ptrdiff_t>(n));
  commit_group(std::move(group), [this] { commit_waiting(); });
}

void OutboundQueue::commit_group(std::shared_ptr<std::vector<Waiting>> group,
                                 std::function<void()> then) {
  committing_ = true;
  // Each clientId once; a second caller with the same one learns it is a duplicate.
  json rows = json::array();
  std::set<std::string> distinct;
  for (std::size_t i = 0; i < group->size(); ++i) {
    const auto& e = (*group)[i].event;
    if (!distinct.insert(e.client_id).second) continue;
    rows.push_back({{"n", i},
                    {"c", e.client_id},
                    {"t", e.type},
                    {"o", e.occurred_at},
                    {"d", e.data},
                    {"s", (*group)[i].size}});
  }
  database_.run<std::vector<Written>>(
      [rows = rows.dump()](Session& s) { return insert_group(s, rows); },
      [this, alive = std::weak_ptr<int>(alive_), group,
       then = std::move(then)](Result<std::vector<Written>> r) mutable {
        if (alive.expired()) {
          // The queue is gone: its callers hear so (what committed is in the table).
          for (auto& w : *group)
            w.done(r ? Result<Enqueued>(Error{Errc::unavailable, "the queue stopped"}) : r.error());
          return;
        }
        ++commits_;
        if (!r && r.error().code == Errc::database && group->size() > 1) {
          // A row the server refuses must not fail the others: the group is
          // halved until the refused event is alone.
          log_.warn("A group of events was refused; committing it in halves.",
                    {{"events", group->size()}, {"reason", r.error().message}});
          const auto half = static_cast<std::ptrdiff_t>(group->size() / 2);
          auto first = std::make_shared<std::vector<Waiting>>(
              std::make_move_iterator(group->begin()),
              std::make_move_iterator(group->begin() + half));
          auto second =
              std::make_shared<std::vector<Waiting>>(std::make_move_iterator(group->begin() + half),
                                                     std::make_move_iterator(group->end()));
          return commit_group(std::move(first), [this, second, then = std::move(then)]() mutable {
            commit_group(std::move(second), std::move(then));
          });
        }
        // Answered while still committing: what the callers enqueue next
        // waits for the next group instead of starting one of its own.
        answer_group(*group, r);
        committing_ = false;
        then();
      });
}

void OutboundQueue::answer_group(std::vector<Waiting>& group,
                                 const Result<std::vector<Written>>& r) {
  std::map<std::string, const Written*> by_id;
  if (r) {
    for (const auto& w : r.value()) by_id.emplace(w.client_id, &w);
  }
  std::set<std::string> answered;
  bool added = false;
  for (auto& w : group) {
    --unanswered_rows_;
    unanswered_bytes_ -= w.size;
    if (!r) {
      w.done(r.error());
      continue;
    }
    auto it = by_id.find(w.event.client_id);
    if (it == by_id.end()) {
      w.done(Error{Errc::database, "the event's row was not returned"});
      continue;
    }
    Enqueued out = it->second->result;
    if (!answered.insert(w.event.client_id).second)
      out.duplicate = true;  // the same clientId twice in one group
    if (!out.duplicate) {
      if (stats_.depth == 0 || oldest_seq_ == 0 || out.seq < oldest_seq_) {
        oldest_seq_ = out.seq;
        stats_.oldest_at = it->second->enqueued_at;
      }
      ++stats_.depth;
      stats_.bytes += w.size;
      added = true;
    }
    w.done(std::move(out));
  }
  if (added) pump();
}

void OutboundQueue::on_welcomed() {
  ++session_;
  welcomed_ = true;
  loading_ = false;
  in_flight_.clear();
  sent_seq_.clear();
  last_sent_seq_ = 0;  // everything unacknowledged goes again, oldest first
  pump();
}

void OutboundQueue::on_disconnected() {
  ++session_;
  welcomed_ = false;
  loading_ = false;
  in_flight_.clear();
  sent_seq_.clear();
  retry_timer_.cancel();
}

void OutboundQueue::pump() {
  if (!welcomed_ || stopped_ || loading_) return;
  if (in_flight_.size() >= limits_.batches_in_flight) return;
  if (!router_.writable()) {
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
        auto r = tx.exec_params(
            "SELECT seq, client_id::text, type, " + utc_text("occurred_at") +
                ", data::text FROM outbound_event WHERE acked_at IS NULL AND seq > $1 "
                "ORDER BY seq LIMIT $2",
            after, limit);
        // Each event's §6 form, as text, here: the loop only joins them, and
        // nothing is parsed again. Every part is safe to splice: a UUID, a
        // type from the table's CHECK list, a time to_char wrote, and jsonb's
        // own output.
        std::vector<Row> rows;
        rows.reserve(r.size());
        for (const auto& row : r) {
          Row out{row[0].as<std::int64_t>(), row[1].as<std::string>(), {}};
          const std::string_view type(row[2].c_str(), row[2].size());
          const std::string_view at(row[3].c_str(), row[3].size());
          const std::string_view data(row[4].c_str(), row[4].size());
          out.json.reserve(80 + out.client_id.size() + type.size() + at.size() + data.size());
          out.json.append("{\"clientId\":\"").append(out.client_id).append("\",\"type\":\"");
          out.json.append(type).append("\",\"occurredAt\":\"").append(at).append("\",\"data\":");
          out.json.append(data).push_back('}');
          rows.push_back(std::move(out));
        }
        return rows;
      },
      [this, alive = std::weak_ptr<int>(alive_), session](Result<std::vector<Row>> r) {
        if (alive.expired() || session != session_) return;  // gone, or a reconnect came in between
        loading_ = false;
        if (!r) {
          log_.warn("Could not read the outbound queue; retrying.",
                    {{"reason", r.error().message}});
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
  std::string payload = "{\"events\":[";
  std::vector<std::string> ids;
  std::size_t bytes = 200;  // the envelope around the events
  std::int64_t last_seq = last_sent_seq_;
  for (auto& row : rows) {
    const auto size = row.json.size() + 1;
    if (!ids.empty() && bytes + size > limits_.batch_bytes) break;  // the rest go next
    bytes += size;
    if (!ids.empty()) payload.push_back(',');
    payload += row.json;
    sent_seq_[row.client_id] = row.seq;
    ids.push_back(std::move(row.client_id));
    last_seq = row.seq;
  }
  payload += "]}";
  const auto session = session_;
  auto id = router_.request_serialized(
      "events.batch", payload, limits_.ack_timeout,
      [this, alive = std::weak_ptr<int>(alive_), session, ids](Result<protocol::Envelope> r) {
        if (alive.expired() || session != session_) return;
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
        if (!r && r.error().code == Errc::disconnected) return;
        const std::string why = r ? "events.batch answered with " + r.value().type
                                : r.error().code == Errc::timeout
                                    ? "events.batch unacknowledged for 60 s"
                                    : "events.batch refused: " + r.error().message;
        log_.warn("A batch was not acknowledged; reconnecting to send it again.",
                  {{"reason", why}});
        router_.reconnect(why);
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
  // Events this connection sent are marked by seq, the primary key, in the
  // order they lie on disk; anything else (a late ack) by clientId.
  std::vector<std::int64_t> seqs;
  seqs.reserve(ids.size());
  for (const auto& id : ids) {
    auto it = sent_seq_.find(id);
    if (it == sent_seq_.end()) break;
    seqs.push_back(it->second);
  }
  const bool by_seq = seqs.size() == ids.size();
  if (by_seq) {
    for (const auto& id : ids) sent_seq_.erase(id);
  }
  std::string keys;
  if (by_seq) {
    keys = "{";
    for (std::size_t i = 0; i < seqs.size(); ++i) keys += (i ? "," : "") + std::to_string(seqs[i]);
    keys += "}";
  } else {
    keys = uuid_array(ids);
  }
  // One statement, one round trip: mark what the ack names and was not yet
  // marked, sum what that was, and find the oldest event left, starting at
  // the oldest known (its index entries below are the dead ones earlier
  // acknowledgements left). Its cost grows with the batch, not the queue.
  database_.run<Marked>(
      [keys = std::move(keys), by_seq, from = oldest_seq_](Session& s) -> Result<Marked> {
        pqxx::nontransaction tx(s.conn());
        const std::string match =
            by_seq ? "seq = ANY($1::bigint[])" : "client_id = ANY($1::uuid[])";
        auto r = tx.exec_params1(
            "WITH acked AS (UPDATE outbound_event SET acked_at = now() "
            "               WHERE " +
                match +
                " AND acked_at IS NULL RETURNING seq, size_bytes), "
                "oldest AS (SELECT seq, enqueued_at FROM outbound_event WHERE acked_at IS NULL AND "
                "seq >= $2 "
                "           AND seq NOT IN (SELECT seq FROM acked) ORDER BY seq LIMIT 1) "
                "SELECT (SELECT count(*) FROM acked), (SELECT COALESCE(sum(size_bytes), 0) FROM "
                "acked), "
                "(SELECT seq FROM oldest), (SELECT " +
                utc_text("enqueued_at") + " FROM oldest)",
            keys, from);
        Marked m;
        m.rows = r[0].as<std::int64_t>();
        m.bytes = r[1].as<std::int64_t>();
        if (!r[2].is_null()) {
          m.oldest_seq = r[2].as<std::int64_t>();
          m.oldest_at = r[3].as<std::string>();
        }
        return m;
      },
      [this, alive = std::weak_ptr<int>(alive_)](Result<Marked> r) {
        if (alive.expired()) return;
        if (!r) {
          // Not marked: the events are sent again later, which the cloud
          // deduplicates. Nothing is lost.
          log_.warn("Could not mark acknowledged events.", {{"reason", r.error().message}});
          return;
        }
        stats_.depth = std::max<std::int64_t>(0, stats_.depth - r.value().rows);
        stats_.bytes = std::max<std::int64_t>(0, stats_.bytes - r.value().bytes);
        // Events committed after this statement are answered after it too,
        // and set the oldest themselves when the queue was empty.
        oldest_seq_ = r.value().oldest_seq;
        stats_.oldest_at = r.value().oldest_at;
        if (stats_.depth == 0) {
          oldest_seq_ = 0;
          stats_.oldest_at.reset();
        }
      });
}

void OutboundQueue::purge() {
  if (stopped_) return;
  const auto keep_s = std::chrono::duration_cast<std::chrono::seconds>(limits_.keep_acked).count();
  database_.run<std::int64_t>(
      [keep_s](Session& s) -> Result<std::int64_t> {
        pqxx::work tx(s.conn());
        auto r = tx.exec_params(
            "DELETE FROM outbound_event WHERE acked_at < now() - make_interval(secs => $1)",
            static_cast<double>(keep_s));
        tx.commit();
        return static_cast<std::int64_t>(r.affected_rows());
      },
      [this, alive = std::weak_ptr<int>(alive_)](Result<std::int64_t> r) {
        if (alive.expired()) return;
        if (r && r.value() > 0)
          log_.info("Deleted acknowledged events past their 7 days.", {{"rows", r.value()}});
        if (stopped_) return;
        purge_timer_.expires_after(limits_.purge_every);
        purge_timer_.async_wait([this](boost::system::error_code ec) {
          if (!ec) purge();
        });
      });
}

}  // namespace secbox::replica
