#pragma once
// The pairing pages' HTML: small, readable on a phone, no scripts.
#include <string>
#include <vector>

#include "pairing/qr.hpp"

namespace secbox::pairing {

struct PageModel {
  std::string hostname;
  std::vector<std::string> addresses;
  std::vector<std::string> named_links;  // §7.7, listed first
  std::string fingerprint;               // display form; empty while being made
  int lan_port = 8443;
  bool needs_pairing = false;
  std::string cloud;               // the cloud the box pairs with; empty: none
  std::string form_token;          // sent back with the form (cross-site posts lack it)
  std::string banner;              // a problem with the claim, in plain words
  std::vector<FieldError> errors;  // problems with the pasted text
  std::string text;                // what was pasted, shown again to fix it
};

std::string html_escape(const std::string& s);
std::string render_form(const PageModel& m);
std::string render_paired(const PageModel& m, const std::string& device_id);
std::string render_gone(const PageModel& m);
std::vector<std::string> lan_links(const PageModel& m);

}  // namespace secbox::pairing
