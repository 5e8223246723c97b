#include "media/fmp4.hpp"

#include <cstdio>
#include <optional>

namespace secbox::media {

namespace {

std::uint32_t u32(std::string_view b, std::size_t at) {
  return (static_cast<std::uint32_t>(static_cast<unsigned char>(b[at])) << 24) |
         (static_cast<std::uint32_t>(static_cast<unsigned char>(b[at + 1])) << 16) |
         (static_cast<std::uint32_t>(static_cast<unsigned char>(b[at + 2])) << 8) |
         static_cast<std::uint32_t>(static_cast<unsigned char>(b[at + 3]));
}

std::uint64_t u64(std::string_view b, std::size_t at) {
  return (std::uint64_t{u32(b, at)} << 32) | u32(b, at + 4);
}

struct Box {
  std::string_view type;
  std::string_view whole;
  std::string_view payload;
};

// The boxes inside `data`, in order; nullopt when one does not fit.
std::optional<std::vector<Box>> children(std::string_view data) {
  std::vector<Box> out;
  std::size_t at = 0;
  while (at < data.size()) {
    if (data.size() - at < 8) return std::nullopt;
    std::uint64_t size = u32(data, at);
    std::size_t header = 8;
    if (size == 1) {
      if (data.size() - at < 16) return std::nullopt;
      size = u64(data, at + 8);
      header = 16;
    } else if (size == 0) {
      size = data.size() - at;  // to the end of its container
    }
    if (size < header || size > data.size() - at) return std::nullopt;
    out.push_back(
        {data.substr(at + 4, 4), data.substr(at, size), data.substr(at + header, size - header)});
    at += size;
    if (out.size() > 4096) return std::nullopt;
  }
  return out;
}

std::optional<Box> child(std::string_view data, std::string_view type) {
  auto all = children(data);
  if (!all) return std::nullopt;
  for (const auto& b : *all) {
    if (b.type == type) return b;
  }
  return std::nullopt;
}

// Down a path of first children of these types.
std::optional<Box> descend(std::string_view data, std::initializer_list<std::string_view> path) {
  std::optional<Box> at;
  std::string_view in = data;
  for (auto type : path) {
    at = child(in, type);
    if (!at) return std::nullopt;
    in = at->payload;
  }
  return at;
}

// trex's default_sample_flags in moov/mvex (the movie's fallback).
std::optional<std::uint32_t> trex_flags(std::string_view moov_payload) {
  auto trex = descend(moov_payload, {"mvex", "trex"});
  if (!trex || trex->payload.size() < 24) return std::nullopt;
  return u32(trex->payload, 20);  // version/flags, track, description, duration, size, flags
}

// Whether a moof's first sample is a sync sample (ISO/IEC 14496-12 8.8.7,
// 8.8.8: sample_is_non_sync_sample is bit 16 of the sample flags).
std::optional<bool> first_sample_is_sync(std::string_view moof_payload,
                                         std::uint32_t movie_default) {
  auto traf = child(moof_payload, "traf");
  if (!traf) return std::nullopt;
  auto tfhd = child(traf->payload, "tfhd");
  auto trun = child(traf->payload, "trun");
  if (!tfhd || !trun || tfhd->payload.size() < 8 || trun->payload.size() < 8) return std::nullopt;
  std::uint32_t flags = movie_default;
  const std::uint32_t hf = u32(tfhd->payload, 0) & 0xFFFFFF;
  std::size_t at = 8;
  if (hf & 0x1) at += 8;   // base_data_offset
  if (hf & 0x2) at += 4;   // sample_description_index
  if (hf & 0x8) at += 4;   // default_sample_duration
  if (hf & 0x10) at += 4;  // default_sample_size
  if (hf & 0x20) {
    if (tfhd->payload.size() < at + 4) return std::nullopt;
    flags = u32(tfhd->payload, at);
  }
  const std::uint32_t rf = u32(trun->payload, 0) & 0xFFFFFF;
  const std::uint32_t samples = u32(trun->payload, 4);
  at = 8;
  if (rf & 0x1) at += 4;  // data_offset
  if (rf & 0x4) {
    if (trun->payload.size() < at + 4) return std::nullopt;
    flags = u32(trun->payload, at);
  } else if ((rf & 0x400) && samples > 0) {
    if (rf & 0x100) at += 4;  // the first sample's duration
    if (rf & 0x200) at += 4;  // and size
    if (trun->payload.size() < at + 4) return std::nullopt;
    flags = u32(trun->payload, at);
  }
  return (flags & 0x00010000) == 0;
}

}  // namespace

bool browsers_play(const std::string& codec) {
  return codec.rfind("avc1.", 0) == 0 || codec.rfind("avc3.", 0) == 0;
}

std::string fmp4_codec(std::string_view moov) {
  auto top = children(moov);
  if (!top || top->size() != 1 || top->front().type != "moov") return {};
  auto stsd = descend(top->front().payload, {"trak", "mdia", "minf", "stbl", "stsd"});
  if (!stsd || stsd->payload.size() < 8) return {};
  auto entries = children(stsd->payload.substr(8));
  if (!entries || entries->empty()) return {};
  const Box& entry = entries->front();
  const std::string type(entry.type);
  for (char c : type) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) return {};
  }
  if ((type == "avc1" || type == "avc3") && entry.payload.size() > 78) {
    // A visual sample entry: 78 bytes of fields, then its boxes.
    auto avcc = child(entry.payload.substr(78), "avcC");
    if (avcc && avcc->payload.size() >= 4 && static_cast<unsigned char>(avcc->payload[0]) == 1) {
      char codec[16];
      std::snprintf(codec, sizeof codec, "%s.%02x%02x%02x", type.c_str(),
                    static_cast<unsigned char>(avcc->payload[1]),
                    static_cast<unsigned char>(avcc->payload[2]),
                    static_cast<unsigned char>(avcc->payload[3]));
      return codec;
    }
  }
  return type;
}

void Fmp4Splitter::reset() {
  buffer_.clear();
  used_ = 0;
  failed_ = false;
  ftyp_.clear();
  moof_.clear();
  moof_key_ = false;
  have_init_ = false;
  trex_flags_ = 0x00010000;
}

Result<void> Fmp4Splitter::feed(std::string_view bytes, std::vector<Fmp4Piece>& out) {
  if (failed_) return Error{Errc::invalid, "the stream was refused; it must start again"};
  buffer_.append(bytes);
  auto fail = [&](const std::string& why) -> Result<void> {
    failed_ = true;
    buffer_.clear();
    used_ = 0;
    return Error{Errc::invalid, why};
  };
  for (;;) {
    const std::string_view rest(buffer_.data() + used_, buffer_.size() - used_);
    if (rest.size() < 8) break;
    std::uint64_t size = u32(rest, 0);
    std::size_t header = 8;
    if (size == 1) {
      if (rest.size() < 16) break;
      size = u64(rest, 8);
      header = 16;
    }
    if (size == 0) return fail("a box that runs to the end of a live stream");
    if (size < header || size > kMaxBox) return fail("a box of " + std::to_string(size) + " bytes");
    if (rest.size() < size) break;
    if (auto taken = take_box(rest.substr(4, 4), rest.substr(0, size), out); !taken)
      return fail(taken.error().message);
    used_ += size;
  }
  if (used_ == buffer_.size() || used_ > (1u << 20)) {
    buffer_.erase(0, used_);
    used_ = 0;
  }
  return ok();
}

Result<void> Fmp4Splitter::take_box(std::string_view type, std::string_view box,
                                    std::vector<Fmp4Piece>& out) {
  auto parsed = children(box);
  if (!parsed || parsed->size() != 1) return Error{Errc::invalid, "a malformed box"};
  const std::string_view payload = parsed->front().payload;
  if (type == "ftyp") {
    if (box.size() > 4096)
      return Error{Errc::invalid, "an ftyp box of " + std::to_string(box.size()) + " bytes"};
    ftyp_.assign(box);
    have_init_ = false;
    moof_.clear();
  } else if (type == "moov") {
    if (ftyp_.empty()) return Error{Errc::invalid, "a moov box without ftyp"};
    if (box.size() > (1u << 20))
      return Error{Errc::invalid, "a moov box of " + std::to_string(box.size()) + " bytes"};
    if (!children(payload)) return Error{Errc::invalid, "a malformed moov box"};
    Fmp4Piece init;
    init.kind = Fmp4Piece::Kind::init;
    init.codec = fmp4_codec(box);
    init.bytes = ftyp_ + std::string(box);
    trex_flags_ = trex_flags(payload).value_or(0x00010000);
    have_init_ = true;
    out.push_back(std::move(init));
  } else if (type == "moof") {
    if (!have_init_) return Error{Errc::invalid, "a fragment before the init segment"};
    auto sync = first_sample_is_sync(payload, trex_flags_);
    if (!sync) return Error{Errc::invalid, "a moof box without a readable track fragment"};
    moof_.assign(box);
    moof_key_ = *sync;
  } else if (type == "mdat") {
    if (moof_.empty()) return ok();  // data of no fragment: nothing can play it
    Fmp4Piece fragment;
    fragment.kind = Fmp4Piece::Kind::fragment;
    fragment.key = moof_key_;
    fragment.bytes.reserve(moof_.size() + box.size());
    fragment.bytes = std::move(moof_);
    fragment.bytes.append(box);
    moof_.clear();
    out.push_back(std::move(fragment));
  }
  // free, skip, udta, styp, sidx, prft, mfra…: nothing a viewer needs.
  return ok();
}

}  // namespace secbox::media
